#!/usr/bin/env bash
# lm-evaluation-harness through `reprise serve`, checked item by item against `reprise eval` on
# the same items and prompt: on the plain path and on one repeat path chosen per request through
# the model name ("<id>:rep", a --named-path).
#
#   scripts/lm_eval_check.sh MODEL.gguf [LIMIT=40] [PATH=repeat:1:4] [TASK=arc_easy]
#
# TASK arc_easy: log-likelihood (lm-eval's arc_easy against `reprise eval --task arc_easy`).
# TASK gsm8k: generation (lm-eval's gsm8k, zero-shot since GSM8K's train split is not bundled,
# against `reprise eval --task gsm8k_zeroshot`): generate_until requests, greedy, lm-eval's `until`
# as `stop`, 256 new tokens at most.
#
# Offline: lm-eval reads the bundled data (data/arc/arc_easy.jsonl, data/gsm8k/test.jsonl)
# through a task YAML written here (HF `datasets`' json loader, HF_DATASETS_OFFLINE=1) and
# tokenizes through the server's /tokenize (tokenizer_backend=remote), so it needs no Hugging
# Face tokenizer. The server runs with --bos-token-prompts, so that token prompts start with BOS
# as `reprise eval` feeds them.
# Environment: PYTHON (an interpreter that imports lm_eval; default python3), REPRISE (the
# binary; default build/reprise), REPRISE_DATA_DIR (default ./data), KEEP=1 keeps the work dir,
# TOL (per-choice log-likelihood tolerance, default 1e-6; both sides score with batch-invariant
# prefills, so they agree to the last bits: docs/python.md).
# Exit status: 0 when every item agrees (arc_easy: per-choice log-likelihoods within TOL, acc and
# acc_norm equal; gsm8k: generated text, each filter's extracted answer and exact_match equal),
# 1 otherwise, 77 when lm_eval is not importable. Prints one line per path with lm-eval's and
# reprise's metrics.
set -euo pipefail

model=${1:?usage: scripts/lm_eval_check.sh MODEL.gguf [LIMIT] [PATH] [TASK]}
limit=${2:-40}
path=${3:-repeat:1:4}
task=${4:-arc_easy}
case $task in
  arc_easy) data_file=arc/arc_easy.jsonl re_task=arc_easy ;;
  gsm8k) data_file=gsm8k/test.jsonl re_task=gsm8k_zeroshot ;;
  *) echo "lm_eval_check: TASK '$task' is not arc_easy or gsm8k" >&2; exit 2 ;;
esac
PYTHON=${PYTHON:-python3}
REPRISE=${REPRISE:-build/reprise}
data=$(realpath "${REPRISE_DATA_DIR:-data}")
[[ -f $model ]] || { echo "lm_eval_check: model file '$model' not found" >&2; exit 2; }
[[ -x $REPRISE ]] || { echo "lm_eval_check: REPRISE='$REPRISE' is not an executable" >&2; exit 2; }
[[ -f $data/$data_file ]] || { echo "lm_eval_check: $data/$data_file not found" >&2; exit 2; }
# 77: ctest's "skipped" (SKIP_RETURN_CODE) for the lmeval test; under CI=true (where
# scripts/test.sh installs lm-eval) a missing lm_eval is a failure, not a skip.
if ! "$PYTHON" -c 'import lm_eval.evaluator' 2>/dev/null; then
  if [[ ${CI:-} == true ]]; then
    echo "lm_eval_check: '$PYTHON' cannot import lm_eval (CI=true: scripts/setup-lmeval.sh makes it)" >&2
    exit 1
  fi
  echo "lm_eval_check: skipped: '$PYTHON' cannot import lm_eval (set PYTHON)" >&2
  exit 77
fi

work=$(mktemp -d)
server_pid=
cleanup() {
  [[ -n $server_pid ]] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
  [[ ${KEEP:-0} == 1 ]] && echo "lm_eval_check: kept $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/tasks"
if [[ $task == arc_easy ]]; then
# lm-eval's arc_easy (v1.0: "Question: {question}\nAnswer:", " " + choice, acc and acc_norm)
# over the bundled llm-foundry records, whose "query" is already "Question: {question}".
cat > "$work/tasks/lm_task.yaml" <<YAML
task: arc_easy_local
dataset_path: json
dataset_kwargs:
  data_files:
    test: $data/$data_file
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
else
# lm-eval 0.4.13's tasks/gsm8k/gsm8k.yaml (v3.0) but for its data source, the bundled GSM8K
# test records ({"question", "answer"}, as openai/gsm8k's "main"), and num_fewshot 0 (its five
# examples come from the train split, which is not bundled).
cat > "$work/tasks/lm_task.yaml" <<'YAML'
task: gsm8k_local
dataset_path: json
dataset_kwargs:
  data_files:
    test: DATA_FILE
output_type: generate_until
test_split: test
doc_to_text: "Question: {{question}}\nAnswer:"
doc_to_target: "{{answer}}"
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
    ignore_punctuation: false
    regexes_to_ignore:
      - ","
      - "\\$"
      - "(?s).*#### "
      - "\\.$"
generation_kwargs:
  until:
    - "Question:"
    - "</s>"
    - "<|im_end|>"
  do_sample: false
  temperature: 0.0
repeats: 1
num_fewshot: 0
filter_list:
  - name: "strict-match"
    filter:
      - function: "regex"
        regex_pattern: "#### (\\-?[0-9\\.\\,]+)"
      - function: "take_first"
  - name: "flexible-extract"
    filter:
      - function: "regex"
        group_select: -1
        regex_pattern: "(-?[$0-9.,]{2,})|(-?[0-9]+)"
      - function: "take_first"
metadata:
  version: 3.0
YAML
sed -i "s|DATA_FILE|$data/$data_file|" "$work/tasks/lm_task.yaml"
fi
lm_task=$(sed -n 's/^task: //p' "$work/tasks/lm_task.yaml")

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
    --include_path "$work/tasks" --tasks "$lm_task" --limit "$limit" --log_samples \
    --output_path "$work/lm_$name" > "$work/lm_$name.log" 2>&1 ||
    { cat "$work/lm_$name.log" >&2; exit 1; }
  "$REPRISE" eval -m "$model" -t 1 --task "$re_task" --limit "$limit" "${extra[@]}" \
    --log-samples "$work/re_$name.jsonl" -o "$work/re_$name.json" > "$work/re_$name.log" 2>&1 ||
    { cat "$work/re_$name.log" >&2; exit 1; }
  "$PYTHON" - "$name" "$work/lm_$name" "$lm_task" "$work/re_$name.jsonl" "${TOL:-1e-6}" <<'PY' || status=1
import glob, json, sys
name, lm_dir, lm_task, re_file, tol = sys.argv[1:]
tol = float(tol)

# Both sides log one sample per item (multiple choice) or per item and filter (generation).
def key(s):
    return (s["doc_id"], s.get("filter", ""))

lm = {}
for f in glob.glob(f"{lm_dir}/**/samples_{lm_task}_*.jsonl", recursive=True):
    for line in open(f):
        s = json.loads(line)
        lm[key(s)] = s
re = {}
for line in open(re_file):
    s = json.loads(line)
    re[key(s)] = s
bad, worst = [], 0.0
for k, a in sorted(lm.items()):
    b = re.get(k)
    item = f"item {k[0]}" + (f" {k[1]}" if k[1] else "")
    if b is None:
        bad.append(f"{item}: missing from reprise's samples"); continue
    if lm_task.startswith("gsm8k"):
        # The generated text, what the filter extracted from it, and its score.
        ta, tb = a["resps"][0][0], b["resps"][0][0]
        if ta != tb:
            n = next((i for i, (x, y) in enumerate(zip(ta, tb)) if x != y), min(len(ta), len(tb)))
            bad.append(f"{item}: generations differ at character {n}: "
                       f"lm-eval {ta[n:n + 40]!r} reprise {tb[n:n + 40]!r}")
        if a["filtered_resps"] != b["filtered_resps"]:
            bad.append(f"{item}: extracted lm-eval {a['filtered_resps']} reprise {b['filtered_resps']}")
        if float(a["exact_match"]) != float(b["exact_match"]):
            bad.append(f"{item}: exact_match lm-eval {a['exact_match']} reprise {b['exact_match']}")
        continue
    la = [float(r[0][0]) for r in a["resps"]]
    lb = [float(r[0][0]) for r in b["resps"]]
    if len(la) != len(lb):
        bad.append(f"{item}: {len(la)} vs {len(lb)} choices"); continue
    for c, (x, y) in enumerate(zip(la, lb)):
        worst = max(worst, abs(x - y))
        if abs(x - y) > tol:
            bad.append(f"{item} choice {c}: lm-eval {x!r} reprise {y!r}")
    for m in ("acc", "acc_norm"):
        if float(a[m]) != float(b[m]):
            bad.append(f"{item}: {m} lm-eval {a[m]} reprise {b[m]}")

def mean(d, metric, flt=None):
    v = [float(s[metric]) for s in d.values() if flt is None or s.get("filter") == flt]
    return sum(v) / max(len(v), 1)

n = len({k[0] for k in lm})
if lm_task.startswith("gsm8k"):
    same = sum(1 for k, a in lm.items() if k[1] == "strict-match" and k in re
               and a["resps"][0][0] == re[k]["resps"][0][0])
    side = lambda d: " ".join(f"{f} {mean(d, 'exact_match', f):.4f}"
                              for f in ("strict-match", "flexible-extract"))
    print(f"{name}: {n} items; lm-eval exact_match {side(lm)}; reprise exact_match {side(re)}; "
          f"identical generations {same}/{n}")
else:
    print(f"{name}: {n} items; lm-eval acc {mean(lm, 'acc'):.4f} acc_norm {mean(lm, 'acc_norm'):.4f}; "
          f"reprise acc {mean(re, 'acc'):.4f} acc_norm {mean(re, 'acc_norm'):.4f}; "
          f"largest log-likelihood difference {worst:.3g}")
if n == 0 or len(re) != len(lm):
    bad.append(f"sample counts differ: lm-eval {len(lm)}, reprise {len(re)}")
for line in bad[:20]:
    print("  " + line)
sys.exit(1 if bad else 0)
PY
done
exit $status
