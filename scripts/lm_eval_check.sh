#!/usr/bin/env bash
# lm-evaluation-harness's ARC-Easy through `reprise serve`, checked item by item against
# `reprise eval --task arc_easy`: on the plain path and on one repeat path chosen per request
# through the model name ("<id>:rep", a --named-path).
#
#   scripts/lm_eval_check.sh MODEL.gguf [LIMIT=40] [PATH=repeat:1:4]
#
# Offline: lm-eval reads data/arc/arc_easy.jsonl through a task YAML written here (HF `datasets`'
# json loader, HF_DATASETS_OFFLINE=1) and tokenizes through the server's /tokenize
# (tokenizer_backend=remote), so it needs no Hugging Face tokenizer. The server runs with
# --bos-token-prompts, so that token prompts start with BOS as `reprise eval` scores them.
# Environment: PYTHON (an interpreter that imports lm_eval; default python3), REPRISE (the
# binary; default build/reprise), REPRISE_DATA_DIR (default ./data), KEEP=1 keeps the work dir,
# TOL (per-choice log-likelihood tolerance, default 1e-6; both sides score with batch-invariant
# prefills, so they agree to the last bits: docs/python.md).
# Exit status: 0 when every item agrees (per-choice log-likelihoods within TOL, acc and acc_norm
# equal), 1 otherwise, 77 when lm_eval is not importable. Prints one line per path with
# lm-eval's and reprise's acc / acc_norm.
set -euo pipefail

model=${1:?usage: scripts/lm_eval_check.sh MODEL.gguf [LIMIT] [PATH]}
limit=${2:-40}
path=${3:-repeat:1:4}
PYTHON=${PYTHON:-python3}
REPRISE=${REPRISE:-build/reprise}
data=$(realpath "${REPRISE_DATA_DIR:-data}")
[[ -f $model ]] || { echo "lm_eval_check: model file '$model' not found" >&2; exit 2; }
[[ -x $REPRISE ]] || { echo "lm_eval_check: REPRISE='$REPRISE' is not an executable" >&2; exit 2; }
[[ -f $data/arc/arc_easy.jsonl ]] || { echo "lm_eval_check: $data/arc/arc_easy.jsonl not found" >&2; exit 2; }
# 77: ctest's "skipped" (SKIP_RETURN_CODE) for the lmeval test.
"$PYTHON" -c 'import lm_eval.evaluator' 2>/dev/null ||
  { echo "lm_eval_check: skipped: '$PYTHON' cannot import lm_eval (set PYTHON)" >&2; exit 77; }

work=$(mktemp -d)
server_pid=
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [[ ${KEEP:-0} == 1 ]] && echo "lm_eval_check: kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

# lm-eval's arc_easy (v1.0: "Question: {question}\nAnswer:", " " + choice, acc and acc_norm)
# over the bundled llm-foundry records, whose "query" is already "Question: {question}".
mkdir -p "$work/tasks"
cat > "$work/tasks/arc_easy_local.yaml" <<YAML
task: arc_easy_local
dataset_path: json
dataset_kwargs:
  data_files:
    test: $data/arc/arc_easy.jsonl
output_type: multiple_choice
test_split: test
doc_to_text: "{{query}}\nAnswer:"
doc_to_target: "{{gold}}"
doc_to_choice: "{{choices}}"
metric_list:
  - metric: acc
    aggregation: mean
    higher_is_better: true
  - metric: acc_norm
    aggregation: mean
    higher_is_better: true
metadata:
  version: 1.0
YAML

"$REPRISE" serve -m "$model" -t 1 --port 0 --named-path "rep=$path" --bos-token-prompts \
  --alias m 2> "$work/serve.log" &
server_pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's|^reprise serve: http://127.0.0.1:\([0-9]*\)/v1.*|\1|p' "$work/serve.log")
  [[ -n $port ]] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.1
done
[[ -n $port ]] || { echo "lm_eval_check: the server did not start" >&2; exit 1; }

export HF_DATASETS_OFFLINE=1 HF_HUB_OFFLINE=1 HF_HOME="$work/hf" TOKENIZERS_PARALLELISM=false
status=0
for name in plain rep; do
  served=m; extra=()
  [[ $name == rep ]] && { served=m:rep; extra=(--path "$path"); }
  "$PYTHON" -m lm_eval --model local-completions \
    --model_args "base_url=http://127.0.0.1:$port/v1/completions,model=$served,tokenizer_backend=remote,tokenized_requests=True,max_length=2048,max_retries=1" \
    --include_path "$work/tasks" --tasks arc_easy_local --limit "$limit" --log_samples \
    --output_path "$work/lm_$name" > "$work/lm_$name.log" 2>&1 ||
    { cat "$work/lm_$name.log" >&2; exit 1; }
  "$REPRISE" eval -m "$model" -t 1 --task arc_easy --limit "$limit" "${extra[@]}" \
    --log-samples "$work/re_$name.jsonl" -o "$work/re_$name.json" > "$work/re_$name.log" 2>&1 ||
    { cat "$work/re_$name.log" >&2; exit 1; }
  "$PYTHON" - "$name" "$work/lm_$name" "$work/re_$name.jsonl" "${TOL:-1e-6}" <<'PY' || status=1
import glob, json, sys
name, lm_dir, re_file, tol = sys.argv[1:]
tol = float(tol)
lm = {}
for f in glob.glob(f"{lm_dir}/**/samples_arc_easy_local_*.jsonl", recursive=True):
    for line in open(f):
        s = json.loads(line)
        lm[s["doc_id"]] = s
re = {}
for line in open(re_file):
    s = json.loads(line)
    re[s["doc_id"]] = s
bad, worst = [], 0.0
for doc_id, a in sorted(lm.items()):
    b = re.get(doc_id)
    if b is None:
        bad.append(f"item {doc_id}: missing from reprise's samples"); continue
    la = [float(r[0][0]) for r in a["resps"]]
    lb = [float(r[0][0]) for r in b["resps"]]
    if len(la) != len(lb):
        bad.append(f"item {doc_id}: {len(la)} vs {len(lb)} choices"); continue
    for k, (x, y) in enumerate(zip(la, lb)):
        worst = max(worst, abs(x - y))
        if abs(x - y) > tol:
            bad.append(f"item {doc_id} choice {k}: lm-eval {x!r} reprise {y!r}")
    for m in ("acc", "acc_norm"):
        if float(a[m]) != float(b[m]):
            bad.append(f"item {doc_id}: {m} lm-eval {a[m]} reprise {b[m]}")
n = len(lm)
mean = lambda d, m: sum(float(s[m]) for s in d.values()) / max(len(d), 1)
print(f"{name}: {n} items; lm-eval acc {mean(lm, 'acc'):.4f} acc_norm {mean(lm, 'acc_norm'):.4f}; "
      f"reprise acc {mean(re, 'acc'):.4f} acc_norm {mean(re, 'acc_norm'):.4f}; "
      f"largest log-likelihood difference {worst:.3g}")
if n == 0 or len(re) != n:
    bad.append(f"item counts differ: lm-eval {n}, reprise {len(re)}")
for line in bad[:20]:
    print("  " + line)
sys.exit(1 if bad else 0)
PY
done
exit $status
