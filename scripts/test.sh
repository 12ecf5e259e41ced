#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (unit + model-sized checks).
# Usage: scripts/test.sh [extra ctest args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-build
# lm-evaluation-harness (pinned, from PyPI) for the lmeval tests: lm-eval through `reprise serve`.
lmeval_python=$(scripts/setup-lmeval.sh | tail -n 1)
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release -DREPRISE_LMEVAL_PYTHON="$lmeval_python"
cmake --build build
ctest --test-dir build --output-on-failure --timeout 600 -j2 "$@"
