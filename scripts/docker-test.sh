#!/usr/bin/env bash
# `make docker-test`: builds docker/Dockerfile with Debian's docker.io, starts
# the image, waits for its HEALTHCHECK to report healthy, runs an inference
# with the image's own client, sends SIGTERM and checks that the server exits
# 0 within its drain timeout. Offline-safe: no registry is needed (the debian:12
# base image is made with debootstrap from Debian's mirror when absent, and
# the legacy builder is used because BuildKit would pull its frontend).
# The build context is the work tree's tracked and untracked-but-not-ignored
# files (as `git ls-files` lists them), never build folders.
#   scripts/docker-test.sh [IMAGE_TAG]
set -euo pipefail
cd "$(dirname "$0")/.."
TAG=${1:-vtaserve:test}
NAME=vtaserve-docker-test-$$
EXIT_TIMEOUT=20
HEALTH_WAIT_SECS=${VTASERVE_DOCKER_HEALTH_WAIT_SECS:-300}
MIRROR=${VTASERVE_DEBIAN_MIRROR:-http://deb.debian.org/debian}

say() { echo "docker-test: $*"; }
fail() { echo "docker-test: FAIL: $*" >&2; exit 1; }

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
need=()
command -v dockerd >/dev/null 2>&1 || need+=(docker.io)
command -v debootstrap >/dev/null 2>&1 || need+=(debootstrap)
if [[ ${#need[@]} -gt 0 ]]; then
  say "installing ${need[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    --no-install-recommends "${need[@]}"
fi

# Start a daemon for this run when none answers; stop it again at exit.
started_dockerd=""
work=$(mktemp -d)
cleanup() {
  docker rm -f "$NAME" >/dev/null 2>&1 || true
  if [[ -n "$started_dockerd" ]]; then
    kill "$started_dockerd" 2>/dev/null || true
    wait "$started_dockerd" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT
if ! docker info >/dev/null 2>&1; then
  say "starting dockerd (log: $work/dockerd.log)"
  $SUDO dockerd >"$work/dockerd.log" 2>&1 &
  started_dockerd=$!
  for _ in $(seq 1 60); do
    docker info >/dev/null 2>&1 && break
    sleep 1
  done
  docker info >/dev/null 2>&1 || {
    tail -20 "$work/dockerd.log" >&2
    fail "dockerd did not start"
  }
fi

if ! docker image inspect debian:12 >/dev/null 2>&1; then
  say "making the debian:12 base image with debootstrap from $MIRROR"
  $SUDO debootstrap --variant=minbase bookworm "$work/rootfs" "$MIRROR" \
    >"$work/debootstrap.log" 2>&1 || {
    tail -20 "$work/debootstrap.log" >&2
    fail "debootstrap failed"
  }
  $SUDO tar -C "$work/rootfs" -c . | docker import - debian:12 >/dev/null
  $SUDO rm -rf "$work/rootfs"
fi

say "building $TAG (legacy builder, host network for apt)"
t0=$(date +%s)
git ls-files -co --exclude-standard -z |
  tar --null -T - -c -f - |
  DOCKER_BUILDKIT=0 docker build --network host -q -f docker/Dockerfile \
    -t "$TAG" - >"$work/build.log" 2>&1 || {
  tail -40 "$work/build.log" >&2
  fail "docker build failed"
}
say "built in $(($(date +%s) - t0)) s, $(docker image inspect -f '{{.Size}}' "$TAG" | awk '{printf "%.0f MB", $1 / 1e6}')"

docker run -d --name "$NAME" "$TAG" --model-repository=/models \
  --grpc-port=8001 --metrics-port=8002 --exit-timeout-secs=$EXIT_TIMEOUT \
  >/dev/null
say "waiting for the HEALTHCHECK (up to ${HEALTH_WAIT_SECS} s)"
health=""
for _ in $(seq 1 "$HEALTH_WAIT_SECS"); do
  health=$(docker inspect -f '{{.State.Health.Status}}' "$NAME" 2>/dev/null || echo gone)
  [[ "$health" == healthy || "$health" == unhealthy || "$health" == gone ]] && break
  sleep 1
done
if [[ "$health" != healthy ]]; then
  docker logs "$NAME" 2>&1 | tail -20 >&2
  fail "container health is '$health'"
fi
say "healthy"

docker exec "$NAME" vtaserve-client infer --server=127.0.0.1:8001 \
  --model=resnet18 >"$work/infer.log" 2>&1 || {
  cat "$work/infer.log" >&2
  fail "inference through the container's client failed"
}
grep -q "top-" "$work/infer.log" || fail "no top-k in the client's output"
say "inference OK: $(grep latency "$work/infer.log")"

t0=$(date +%s)
docker kill --signal=SIGTERM "$NAME" >/dev/null
code=$(timeout $((EXIT_TIMEOUT + 15)) docker wait "$NAME" || echo timeout)
took=$(($(date +%s) - t0))
[[ "$code" == 0 ]] || {
  docker logs "$NAME" 2>&1 | tail -20 >&2
  fail "exit status after SIGTERM: $code"
}
((took <= EXIT_TIMEOUT + 5)) || fail "exit took ${took} s (> ${EXIT_TIMEOUT} s)"
docker logs "$NAME" 2>&1 | grep -qi "drain" || say "note: no drain line in the log"
say "PASS: exited 0 ${took} s after SIGTERM"
