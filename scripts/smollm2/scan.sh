#!/usr/bin/env bash
# The brain scan of SmolLM2-135M-Instruct that docs/scan-smollm2.md reports: for one task, every
# block i..j-1 with i, j multiples of 3 (stride 3), repeated and skipped, refined at stride 1 around the 3 best
# of each mode, on the first LIMIT items; the 5 best configs then re-scored on VLIMIT held-out items,
# beside skip controls. Resumable: rerun the same command after a kill and finished configs are kept.
# Usage: scripts/smollm2/scan.sh TASK LIMIT VLIMIT [OUT_DIR]
set -euo pipefail
cd "$(dirname "$0")/../.."
task=$1 limit=$2 vlimit=$3 out=${4:-out/scan}
mkdir -p "$out"
/usr/bin/time -f "wall %e s, user %U s, sys %S s" \
  build/reprise scan -m models/SmolLM2-135M-Instruct.Q4_1.gguf --task "$task" --limit "$limit" \
    --mode repeat,skip --strategy coarse-to-fine --stride 3 --refine-top 3 \
    --validate 5 --validate-limit "$vlimit" --controls 5 --top 15 --quiet \
    -o "$out/$task.db" 2>"$out/$task.err" | tee "$out/$task.txt"
build/reprise report "$out/$task.db" -o "$out/$task.png" -o "$out/$task.html" >"$out/$task.report.txt"
