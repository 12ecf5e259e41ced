#!/usr/bin/env bash
# Prefill and decode speed of reprise (AVX2 and AVX-512 kernels) and llama.cpp on the same files,
# run back to back in alternating rounds, with medians per tool and file.
#
#   bench/prefill_vs_llamacpp.sh REPRISE LLAMA_BENCH ROUNDS FILE.gguf...
#
# Each round runs, for every file in turn: `reprise bench --isa avx2`, `reprise bench --isa avx512`
# and `llama-bench`, each with -t 2 -p 512 -n 128 -r 1 (override with BENCH_ARGS). ISAS="avx512"
# picks other ISAs; BASELINE=path/to/older/reprise also runs that binary (as reprise-base-ISA)
# right before each reprise command, for before/after pairs seconds apart. On a shared,
# noisy host the avx512/avx2 ratio, measured seconds apart by the same binary, is the figure that
# holds; the load average is printed before every round. Raw JSON lines go to $OUT (default
# ./prefill_vs_llamacpp.jsonl); ROUNDS=0 only summarizes an existing $OUT (e.g. a run cut short).
set -euo pipefail

if [[ $# -lt 4 ]]; then
  echo "usage: $0 REPRISE LLAMA_BENCH ROUNDS FILE.gguf..." >&2
  exit 2
fi
reprise=$1 llama=$2 rounds=$3
shift 3
args=${BENCH_ARGS:--t 2 -p 512 -n 128 -r 1}
out=${OUT:-prefill_vs_llamacpp.jsonl}
if ((rounds > 0)); then : >"$out"; fi

for ((round = 1; round <= rounds; ++round)); do
  echo "round $round/$rounds, load: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
  for f in "$@"; do
    for isa in ${ISAS:-avx2 avx512}; do
      if [[ -n ${BASELINE:-} ]]; then
        # shellcheck disable=SC2086
        j=$("$BASELINE" bench -m "$f" $args --isa "$isa" --json 2>/dev/null)
        echo "{\"tool\":\"reprise-base-$isa\",\"file\":\"$f\",\"r\":$j}" >>"$out"
      fi
      # shellcheck disable=SC2086
      j=$("$reprise" bench -m "$f" $args --isa "$isa" --json 2>/dev/null)
      echo "{\"tool\":\"reprise-$isa\",\"file\":\"$f\",\"r\":$j}" >>"$out"
    done
    # shellcheck disable=SC2086
    j=$("$llama" -m "$f" $args -o json 2>/dev/null | tr -d '\n')
    echo "{\"tool\":\"llama.cpp\",\"file\":\"$f\",\"r\":$j}" >>"$out"
  done
done

[[ -s $out ]] || { echo "$0: $out: no results to summarize" >&2; exit 2; }
python3 - "$out" <<'EOF'
import json, statistics, sys
rows = {}
for line in open(sys.argv[1]):
    e = json.loads(line)
    key = (e["file"], e["tool"])
    d = rows.setdefault(key, {"pp": [], "tg": [], "bw": []})
    r = e["r"]
    if e["tool"] == "llama.cpp":
        for t in r:
            (d["pp"] if t["n_prompt"] else d["tg"]).append(t["avg_ts"])
    else:
        if r.get("n_prompt"):
            d["pp"].append(r["pp"]["mean"])
        if r.get("n_gen"):  # BENCH_ARGS with -n 0: prefill only
            d["tg"].append(r["tg"]["mean"])
            d["bw"].append(r["tg_bandwidth_ratio"])
med = lambda v: statistics.median(v) if v else float("nan")
print("| file | tool | pp t/s (median) | tg t/s (median) | tg / measured bandwidth | rounds |")
print("| --- | --- | ---: | ---: | ---: | ---: |")
files = sorted({f for f, _ in rows})
for f in files:
    for tool in sorted({t for g, t in rows if g == f}, key=lambda t: (t == "llama.cpp", t)):
        d = rows.get((f, tool))
        if not d:
            continue
        bw = f"{100 * med(d['bw']):.0f}%" if d["bw"] else ""
        rounds = max(len(d["pp"]), len(d["tg"]))
        print(f"| {f} | {tool} | {med(d['pp']):.1f} | {med(d['tg']):.1f} | {bw} | {rounds} |")
if any(t.startswith("reprise-base-") for _, t in rows):
    print()
    print("| file | isa | pp after / before | pp after / llama.cpp | pp before / llama.cpp |")
    print("| --- | --- | ---: | ---: | ---: |")
    for f in files:
        l = rows.get((f, "llama.cpp"))
        for (g, t), b in sorted(rows.items()):
            a = rows.get((f, t.replace("reprise-base-", "reprise-")))
            if g != f or not t.startswith("reprise-base-") or not (a and l):
                continue
            isa = t[len("reprise-base-"):]
            print(f"| {f} | {isa} | {med(a['pp']) / med(b['pp']):.2f}x "
                  f"| {med(a['pp']) / med(l['pp']):.2f}x | {med(b['pp']) / med(l['pp']):.2f}x |")
print()
print("| file | pp avx512 / avx2 | pp avx512 / llama.cpp | tg avx512 / llama.cpp |")
print("| --- | ---: | ---: | ---: |")
for f in files:
    a, b, l = (rows.get((f, t)) for t in ("reprise-avx512", "reprise-avx2", "llama.cpp"))
    if not (a and b and l):
        continue
    print(f"| {f} | {med(a['pp']) / med(b['pp']):.2f}x | {med(a['pp']) / med(l['pp']):.2f}x "
          f"| {med(a['tg']) / med(l['tg']):.2f}x |")
EOF
