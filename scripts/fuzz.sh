#!/usr/bin/env bash
# Builds the libFuzzer targets (fuzz/, clang + ASan + UBSan) and runs each for SECONDS.
# Usage: scripts/fuzz.sh SECONDS [TARGET...]
#   TARGET: gguf safetensors tokenizer hf_tokenizer layer_path serve_request (default: all)
# Environment:
#   FUZZ_OUT=DIR       where corpora, crashes and logs go (default /tmp/reprise-fuzz); the seeds in
#                      fuzz/corpus/ are only read, so the repository stays unchanged
#   FUZZ_KEEP_GOING=1  keep fuzzing after a crash, timeout or OOM (libFuzzer fork mode), for long
#                      runs; findings still land in FUZZ_OUT/crashes-TARGET/ and fail the script
#   FUZZ_JOBS=N        parallel compile jobs (default 2)
#   FUZZ_SHARED_VOCABS=1   tokenizer target: also fuzz the llama.cpp vocabularies in ../shared
# Exit status: 0 when no target found anything, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."

all_targets=(gguf safetensors tokenizer hf_tokenizer layer_path serve_request)
if (($# < 1)) || ! [[ "$1" =~ ^[0-9]+$ ]]; then
  sed -n '2,13p' "$0" >&2
  exit 2
fi
seconds=$1
shift
targets=("$@")
((${#targets[@]})) || targets=("${all_targets[@]}")
for t in "${targets[@]}"; do
  [[ " ${all_targets[*]} " == *" $t "* ]] || { echo "fuzz.sh: unknown target '$t'" >&2; exit 2; }
done

out=${FUZZ_OUT:-/tmp/reprise-fuzz}
build=build-fuzz
mkdir -p "$out"

# Configure once; later runs only rebuild what changed. Two fuzz.sh runs started together share
# the build directory, so the build is serialised with a lock.
(
  flock 9
  if [ ! -f "$build/build.ninja" ]; then
    cmake -S fuzz -B "$build" -G Ninja -DCMAKE_CXX_COMPILER=clang++ >/dev/null
  fi
  cmake --build "$build" -j "${FUZZ_JOBS:-2}" --target "${targets[@]/#/fuzz_}" >/dev/null
) 9>"$out/.build.lock"

status=0
printf '%-14s %12s %10s %8s  %s\n' target execs exec/s findings log
for t in "${targets[@]}"; do
  corpus="$out/corpus-$t"
  crashes="$out/crashes-$t"
  log="$out/$t.log"
  mkdir -p "$corpus" "$crashes"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$crashes/")
  if [ "${FUZZ_KEEP_GOING:-0}" = 1 ]; then
    args+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  fi
  before=$(find "$crashes" -type f | wc -l)
  # The first corpus directory receives new inputs; the checked-in seeds are only read.
  rc=0
  "$build/fuzz_$t" "${args[@]}" "$corpus" "fuzz/corpus/$t" >"$log" 2>&1 || rc=$?
  found=$(($(find "$crashes" -type f | wc -l) - before))
  # Plain mode prints final stats; fork mode only its periodic "#N: cov: ..." lines.
  # (grep finds nothing in fork mode; under `set -e -o pipefail` that must not end the script.)
  execs=$({ grep -o 'stat::number_of_executed_units: [0-9]*' "$log" || true; } | awk '{print $2}' | tail -1)
  [ -n "$execs" ] || execs=$({ grep -o '^#[0-9]*' "$log" || true; } | tr -d '#' | tail -1)
  rate=$({ grep -o 'stat::average_exec_per_sec: [0-9]*' "$log" || true; } | awk '{print $2}' | tail -1)
  [ -n "$rate" ] || rate=$(( ${execs:-0} / (seconds > 0 ? seconds : 1) ))
  printf '%-14s %12s %10s %8s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$found" "$log"
  if ((rc != 0 || found > 0)); then
    status=1
    echo "fuzz.sh: $t failed (exit $rc); inputs in $crashes/, details in $log" >&2
  fi
done
exit $status
