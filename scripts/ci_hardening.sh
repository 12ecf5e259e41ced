#!/usr/bin/env bash
# CI hardening job (docs/hardening.md):
#   1. the unit tests built with ASan + UBSan (build-asan) and run with leak detection on;
#   2. every libFuzzer target built with clang and run for a short fixed time.
# Usage: scripts/ci_hardening.sh [FUZZ_SECONDS]   (default 20 per target)
set -euo pipefail
cd "$(dirname "$0")/.."
fuzz_seconds=${1:-20}
jobs=${HARDENING_JOBS:-2}
scripts/setup.sh --no-build  # clang and libFuzzer come from Debian (clang, libclang-rt-14-dev)

# -O1 keeps the instrumented build and run fast enough for CI; -g1 gives line numbers in stacks.
# Only the unit test programs and what they need (the libraries and the CLI they run) are built.
cmake -S . -B build-asan -G Ninja -DREPRISE_SANITIZE=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DREPRISE_BUILD_BENCH=OFF -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g1" >/dev/null
cmake --build build-asan -j "$jobs" --target unit_tests kernel_tests
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0:strict_string_checks=1:detect_stack_use_after_return=1
export LSAN_OPTIONS=suppressions=$PWD/scripts/lsan.supp:print_suppressions=0
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
build-asan/tests/kernel_tests --gtest_brief=1
build-asan/tests/unit_tests --gtest_brief=1

# Findings and the grown corpus go to a scratch directory; the checked-in seeds are only read.
fuzz_out=$(mktemp -d /tmp/reprise-ci-fuzz.XXXXXX)
if ! FUZZ_OUT="$fuzz_out" FUZZ_JOBS="$jobs" scripts/fuzz.sh "$fuzz_seconds"; then
  echo "ci_hardening: a fuzz target failed; reproduce with build-fuzz/fuzz_TARGET $fuzz_out/crashes-TARGET/FILE" >&2
  exit 1
fi
rm -rf "$fuzz_out"
