#!/usr/bin/env bash
# Prints, one per line and sorted, the Debian packages that own the shared
# libraries the given binaries load (as ldd resolves them). The Dockerfile's
# build stage runs it so the runtime stage installs exactly those runtime
# packages and no -dev package. Fails when a library is missing or owned by
# no package, or when an owner is a -dev package.
#   docker/runtime-deps.sh build/server/vtaserve build/tools/.../vtaserve-client
set -euo pipefail

if [[ $# -eq 0 ]]; then
  echo "usage: $0 BINARY..." >&2
  exit 2
fi

libs=()
for bin in "$@"; do
  if [[ ! -f "$bin" || ! -x "$bin" ]]; then
    echo "runtime-deps: $bin is not an executable" >&2
    exit 1
  fi
  if ldd "$bin" | grep -q "not found"; then
    echo "runtime-deps: unresolved libraries in $bin:" >&2
    ldd "$bin" | grep "not found" >&2
    exit 1
  fi
  # Lines look like "libx.so.1 => /lib/x86_64-linux-gnu/libx.so.1 (0x...)"
  # or "/lib64/ld-linux-x86-64.so.2 (0x...)"; vdso has no file.
  while read -r lib; do
    [[ -n "$lib" ]] && libs+=("$lib")
  done < <(ldd "$bin" | awk '/=>/ { print $3; next } /^[[:space:]]*\// { print $1 }')
done

# dpkg knows each file under the path its package shipped it at: ask for the
# path as ldd printed it, its resolved target and both /usr-merge spellings,
# all in one (slow) dpkg-query call.
candidates() {
  local lib=$1 real
  real=$(readlink -f "$lib")
  printf '%s\n' "$real" "$lib" "/usr${real}" "${real#/usr}" "/usr${lib}" "${lib#/usr}"
}
mapfile -t all < <(for lib in "${libs[@]}"; do candidates "$lib"; done | sort -u)
declare -A owner_of=()
# Output lines: "pkg[:arch][, pkg2[:arch]]: /path".
while IFS= read -r line; do
  path=${line##*: }
  pkg=${line%%: *}
  pkg=${pkg%%,*}
  owner_of["$path"]=${pkg%%:*}
done < <(dpkg-query -S "${all[@]}" 2>/dev/null || true)

declare -A owners=()
for lib in "${libs[@]}"; do
  owner=""
  while read -r c; do
    if [[ -n "${owner_of[$c]:-}" ]]; then
      owner=${owner_of[$c]}
      break
    fi
  done < <(candidates "$lib")
  if [[ -z "$owner" ]]; then
    echo "runtime-deps: no Debian package owns $lib" >&2
    exit 1
  fi
  owners["$owner"]=1
done

for pkg in "${!owners[@]}"; do
  if [[ "$pkg" == *-dev ]]; then
    echo "runtime-deps: $pkg is a development package" >&2
    exit 1
  fi
  echo "$pkg"
done | sort
