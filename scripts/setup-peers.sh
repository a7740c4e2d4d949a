#!/usr/bin/env bash
# Installs the npm peers used by tests (ONNX Runtime for Node) into tests/peer.
# --ignore-scripts: the package ships its linux-x64 CPU binaries; its install
# script would try to download more and fails offline.
set -euo pipefail
cd "$(dirname "$0")/../tests/peer"
if [[ ! -d node_modules/onnxruntime-node ]]; then
  npm install --ignore-scripts --no-audit --no-fund --loglevel=error
fi
