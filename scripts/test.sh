#!/usr/bin/env bash
# Installs what is missing, builds, and runs the whole test suite (unit + model-sized checks).
# Usage: scripts/test.sh [extra ctest args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --no-build
cmake -S . -B build -G Ninja -DCMAKE_BUILD_TYPE=Release
cmake --build build
ctest --test-dir build --output-on-failure --timeout 600 -j2 "$@"
