#!/usr/bin/env bash
# A/B of two reprise binaries on the scan benchmark's short prefills (docs/performance.md,
# "Packed weights"): alternating rounds of `reprise eval` on the probe and of an 11-config repeat
# scan (--i-range 20:24), wall time of each, then the per-item scores of the last round compared.
# Usage: bench/scan/packed_ab.sh OLD_REPRISE NEW_REPRISE MODEL.gguf PROBE.jsonl OUTDIR [ROUNDS=3]
set -euo pipefail
old=${1:?usage: packed_ab.sh OLD NEW MODEL PROBE OUTDIR [ROUNDS]}
new=${2:?}
model=${3:?}
probe=${4:?}
out=${5:?}
rounds=${6:-3}
mkdir -p "$out"
log="$out/times.tsv"
echo -e "round\tbench\tbinary\tseconds\tload" >"$log"

wall() {  # wall seconds of "$@", stdout/stderr to $out/last.{out,err}
  local t0 t1
  t0=$(date +%s.%N)
  "$@" >"$out/last.out" 2>"$out/last.err"
  t1=$(date +%s.%N)
  echo "$t1 - $t0" | bc
}

for r in $(seq 1 "$rounds"); do
  # Alternate which binary goes first, so a drift in the machine's load hits both alike.
  if ((r % 2)); then order="old new"; else order="new old"; fi
  for which in $order; do
    bin=$old
    [[ $which == new ]] && bin=$new
    load=$(cut -d' ' -f1 /proc/loadavg)
    s=$(wall "$bin" eval -m "$model" --task "$probe" -t 2 -o "$out/eval-$which.json")
    echo -e "$r\teval\t$which\t$s\t$load" | tee -a "$log"
    cp "$out/last.err" "$out/eval-$which.err"
    rm -f "$out/scan-$which.db"
    load=$(cut -d' ' -f1 /proc/loadavg)
    s=$(wall "$bin" scan -m "$model" --task "$probe" --mode repeat --i-range 20:24 -t 2 --quiet \
      -o "$out/scan-$which.db")
    echo -e "$r\tscan\t$which\t$s\t$load" | tee -a "$log"
    cp "$out/last.out" "$out/scan-$which.out"
  done
done

# Medians and per-round ratios (old / new: > 1 means the new binary is faster).
python3 - "$log" <<'EOF'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
for bench in ("eval", "scan"):
    t = {w: [float(r["seconds"]) for r in rows if r["bench"] == bench and r["binary"] == w]
         for w in ("old", "new")}
    ratios = [o / n for o, n in zip(t["old"], t["new"])]
    print(f"{bench}: old median {statistics.median(t['old']):.1f} s, new median "
          f"{statistics.median(t['new']):.1f} s, old/new per round "
          + ", ".join(f"{x:.2f}" for x in ratios)
          + f" (median {statistics.median(ratios):.2f})")
EOF

# Scores: the scan stores' per-item scores, and eval's JSON results, equal bit for bit.
"$new" report "$out/scan-old.db" -o "$out/scan-old.csv" >/dev/null
"$new" report "$out/scan-new.db" -o "$out/scan-new.csv" >/dev/null
if cmp -s "$out/scan-old.csv" "$out/scan-new.csv"; then echo "scan scores: identical"; else
  echo "scan scores: DIFFER"; fi
python3 - "$out/eval-old.json" "$out/eval-new.json" <<'EOF'
import json, sys
def scores(p):  # the results without their timings and dates
    j = json.load(open(p))
    def strip(x):
        if isinstance(x, dict):
            return {k: strip(v) for k, v in x.items()
                    if k not in ("seconds", "total_evaluation_time_seconds", "date", "date_iso")}
        return [strip(v) for v in x] if isinstance(x, list) else x
    return strip(j)
a, b = (scores(p) for p in sys.argv[1:])
print("eval results:", "identical" if a == b else "DIFFER")
EOF
