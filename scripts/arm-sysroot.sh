#!/usr/bin/env bash
# Makes an ARM sysroot for cross builds: Debian 12's own arm64 or armhf
# -dev packages of every library vtaserve links, unpacked into DIR, plus the
# host's cross compiler and qemu-user to run the results.
#   scripts/arm-sysroot.sh arm64|armhf DIR
#
# Why a sysroot and not `dpkg --add-architecture`: multiarch needs every
# Multi-Arch: same package at the very same version on both architectures,
# so one security update that reached the amd64 index before the arm64 one
# (seen here: libssl3, linux-libc-dev) makes apt refuse the whole install;
# prometheus-cpp-dev:arm64 cannot co-install with the host's at all; and a
# cross loader meeting the multiarch libc hangs threaded programs under QEMU.
# debootstrap takes the packages of one consistent suite (bookworm) and
# resolves their dependencies; its first (--foreign) stage needs no emulation,
# and the .deb files it fetched are unpacked with dpkg-deb. Absolute symlinks
# are rewritten to point inside DIR. Idempotent: a stamp names the package set.
set -euo pipefail
ARCH=${1:?usage: $0 arm64|armhf DIR}
DIR=${2:?usage: $0 arm64|armhf DIR}
MIRROR=${VTASERVE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
case "$ARCH" in
  arm64) TRIPLET=aarch64-linux-gnu ;;
  armhf) TRIPLET=arm-linux-gnueabihf ;;
  *) echo "arm-sysroot: unknown ARCH '$ARCH' (arm64 or armhf)" >&2; exit 2 ;;
esac
PKGS=libc6-dev,libstdc++-12-dev,libtbb-dev,libabsl-dev,libgrpc++-dev,libprotobuf-dev,libonnx-dev,libgtest-dev,libgmock-dev,libbenchmark-dev,prometheus-cpp-dev,libpng-dev,libjpeg-dev,zlib1g-dev

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
host=(debootstrap "g++-$TRIPLET" qemu-user protobuf-compiler protobuf-compiler-grpc)
missing=()
for p in "${host[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
  echo "arm-sysroot: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    --no-install-recommends "${missing[@]}"
fi

stamp="$DIR/.vtaserve-sysroot"
want="$ARCH $PKGS"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  exit 0
fi
echo "arm-sysroot: making the $ARCH sysroot in $DIR (debootstrap, first stage)"
rm -rf "$DIR"
mkdir -p "$DIR"
log="$DIR.debootstrap.log"
if ! $SUDO debootstrap --foreign --arch="$ARCH" --variant=minbase \
  --include="$PKGS" bookworm "$DIR" "$MIRROR" >"$log" 2>&1; then
  tail -20 "$log" >&2
  echo "arm-sysroot: debootstrap failed (log: $log)" >&2
  exit 1
fi
for deb in "$DIR"/var/cache/apt/archives/*.deb; do
  dpkg-deb -x "$deb" "$DIR"
done
# Absolute symlinks (libz.so -> /lib/...) would point at the host's files.
find "$DIR" -type l -lname '/*' -print0 |
  while IFS= read -r -d '' link; do
    target=$(readlink "$link")
    ln -snf "$(realpath -m --relative-to="$(dirname "$link")" "$DIR$target")" "$link"
  done
rm -rf "$DIR"/var/cache/apt/archives/*.deb
echo "$want" >"$stamp"
echo "arm-sysroot: $ARCH sysroot ready ($(du -sh "$DIR" | cut -f1))"
