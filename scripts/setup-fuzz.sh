#!/usr/bin/env bash
# Installs Debian's clang 14 and its runtime (libFuzzer, ASan, UBSan) for the
# fuzz build (`make fuzz`). Idempotent; runs apt-get as root or via sudo.
set -euo pipefail
PKGS=(clang-14 libclang-rt-14-dev llvm-14)
missing=()
for p in "${PKGS[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [[ ${#missing[@]} -gt 0 ]]; then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  echo "setup-fuzz: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
