#!/usr/bin/env bash
# Runs every libFuzzer target of a fuzz build for N seconds each:
#   tests/fuzz/run_fuzzers.sh BUILD_DIR SECONDS [TARGET...]
# Corpus per target: BUILD_DIR/fuzz-corpus/<target> (grows across runs),
# seeded from fuzz_seeds and the checked-in tests/fuzz/corpus/<target>
# (seeds and past crashes). A crash, leak, timeout (10 s per input) or
# out-of-memory (2 GiB RSS; 1 GiB per allocation) fails the run; the
# reproducer is kept in BUILD_DIR/fuzz-artifacts/. Prints execs per target.
set -euo pipefail
build=${1:?usage: run_fuzzers.sh BUILD_DIR SECONDS [TARGET...]}
seconds=${2:?usage: run_fuzzers.sh BUILD_DIR SECONDS [TARGET...]}
shift 2
src=$(cd "$(dirname "$0")" && pwd)
targets=("$@")
if [[ ${#targets[@]} -eq 0 ]]; then
  targets=(onnx_importer infer_request model_config npy image vta_sim)
fi
mkdir -p "$build/fuzz-artifacts" "$build/fuzz-logs"
seeds="$build/fuzz-seeds"
rm -rf "$seeds"
"$build/tests/fuzz/fuzz_seeds" "$seeds"
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
status=0
for t in "${targets[@]}"; do
  corpus="$build/fuzz-corpus/$t"
  mkdir -p "$corpus"
  dirs=("$corpus" "$seeds/$t")
  [[ -d "$src/corpus/$t" ]] && dirs+=("$src/corpus/$t")
  dict=()
  [[ -f "$src/$t.dict" ]] && dict=(-dict="$src/$t.dict")
  log="$build/fuzz-logs/$t.log"
  echo "fuzz: $t for ${seconds}s"
  if "$build/tests/fuzz/${t}_fuzz" "${dirs[@]}" "${dict[@]}" \
      -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
      -malloc_limit_mb=1100 -max_len=65536 -print_final_stats=1 \
      -artifact_prefix="$build/fuzz-artifacts/$t-" >"$log" 2>&1; then
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
    echo "fuzz: $t ok, $execs execs"
  else
    echo "fuzz: $t FAILED (log $log, reproducer in $build/fuzz-artifacts/)"
    grep -m 20 -E 'ERROR|SUMMARY|#0|#1|#2|#3|#4|#5' "$log" || tail -30 "$log"
    status=1
  fi
done
exit $status
