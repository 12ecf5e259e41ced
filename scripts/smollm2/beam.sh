#!/usr/bin/env bash
# Multi-block beam search on SmolLM2-135M-Instruct (docs/search.md): seeds are the single-block
# configs of the store's search phase (the stride-3 repeat/skip grid; with the store of
# scripts/smollm2/scan.sh, its refined grid and controls too, already scored), then W best paths
# grown by one block per round for D rounds, K candidates scored per round as the surrogate ranks
# them; the 5 best configs of the whole search re-scored on VLIMIT held-out items.
# Resumable: rerun the same command after a kill.
# Usage: scripts/smollm2/beam.sh TASK LIMIT VLIMIT [OUT_DIR] [W] [D] [K]
set -euo pipefail
cd "$(dirname "$0")/../.."
task=$1 limit=$2 vlimit=$3 out=${4:-out/scan} width=${5:-4} depth=${6:-2} score=${7:-6}
mkdir -p "$out"
/usr/bin/time -f "wall %e s, user %U s, sys %S s" \
  nice -n 5 build/reprise scan -m models/SmolLM2-135M-Instruct.Q4_1.gguf --task "$task" \
    --limit "$limit" --mode repeat,skip --strategy beam --stride 3 --beam "$width" \
    --depth "$depth" --beam-score "$score" --validate 5 --validate-limit "$vlimit" --controls 5 \
    --top 15 --quiet -o "$out/$task.db" 2>"$out/$task.beam.err" | tee "$out/$task.beam.txt"
build/reprise report "$out/$task.db" -o "$out/$task.beam.html" >"$out/$task.beam.report.txt"
