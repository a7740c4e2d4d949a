#!/usr/bin/env bash
# Installs the Debian 12 packages vtaserve needs to build, test and serve.
# Idempotent: only missing packages are installed. Runs apt-get as root or via sudo.
set -euo pipefail

PKGS=(
  build-essential cmake pkg-config ninja-build ccache
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libabsl-dev libtbb-dev prometheus-cpp-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  libonnx-dev libpng-dev libjpeg-dev
  python3-grpcio
  prometheus python3-yaml
  clang-format
)
if [[ "${VTASERVE_WITH_PEERS:-1}" == "1" ]]; then
  PKGS+=(libdnnl-dev)
  # Node.js may come from another source that bundles npm; only ask Debian for what is absent.
  command -v node >/dev/null 2>&1 || PKGS+=(nodejs)
  command -v npm >/dev/null 2>&1 || PKGS+=(npm)
fi

missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [[ ${#missing[@]} -gt 0 ]]; then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
