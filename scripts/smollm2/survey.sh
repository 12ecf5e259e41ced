#!/usr/bin/env bash
# Which tasks does SmolLM2-135M-Instruct score clearly above chance on? Scores the plain model
# (no repeated layers) on every candidate task of docs/scan-smollm2.md and writes one results JSON
# per task to OUT (default out/survey). Usage: scripts/smollm2/survey.sh [OUT]
set -euo pipefail
cd "$(dirname "$0")/../.."
out=${1:-out/survey}
model=models/SmolLM2-135M-Instruct.Q4_1.gguf
mkdir -p "$out"
run() {  # task limit
    local name=${1//:/_}
    [[ -s $out/$name.json ]] && return 0
    echo "== $1 (limit $2)"
    /usr/bin/time -f "   %e s wall" build/reprise eval -m "$model" --task "$1" --limit "$2" \
        -o "$out/$name.json.tmp" >"$out/$name.txt"
    mv "$out/$name.json.tmp" "$out/$name.json"
    grep -v '^$' "$out/$name.txt" | tail -n 4
}
run tinystories 100
run wikitext2 50
run arc_easy 200
run arc_challenge 200
run boolq 200
run winogrande 200
for d in 3 4 5; do run probe_logic:$d 200; done
for d in 1 2 4 8; do run probe_chain:$d 100; done
for d in 1 2 3; do run probe_math:$d 50; done
for t in bbh_boolean_expressions bbh_sports_understanding bbh_navigate bbh_web_of_lies bbh_causal_judgement; do
    run $t 50
done
