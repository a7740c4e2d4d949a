#!/usr/bin/env bash
# Starts vtaserve on the built-in model (creating a model repository with the
# generated ResNet-18 when none exists).
set -euo pipefail
BUILD=${1:-build}
REPO=${2:-$BUILD/model_repository}
if [[ -x "$BUILD/server/vtaserve" ]]; then
  if [[ ! -d "$REPO" ]]; then
    mkdir -p "$REPO/resnet18/1"
    "$BUILD/tools/vtaserve-model" resnet18 --format qdq --input-size 224 \
      -o "$REPO/resnet18/1/model.onnx"
  fi
  exec "$BUILD/server/vtaserve" --model-repository="$REPO"
fi
# Before the server exists: run the built-in model once.
MODEL="$BUILD/resnet18-qdq-224.onnx"
[[ -f "$MODEL" ]] || "$BUILD/tools/vtaserve-model" resnet18 --format qdq --input-size 224 -o "$MODEL"
exec "$BUILD/tools/vtaserve-run" "$MODEL" --input random --device auto
