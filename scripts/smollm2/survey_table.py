#!/usr/bin/env python3
"""Markdown table of scripts/smollm2/survey.sh's results: each task's score, its standard error,
the score of guessing, and how many standard errors above guessing the model is.
Usage: scripts/smollm2/survey_table.py [OUT_DIR]"""
import glob
import json
import os
import sys

# What a model that guesses scores (uniform over the choices; for digit_score a uniform digit
# distribution: E[d] = 4.5, so 1 - |4.5 - g| / 9 averaged over g in 0..9).
CHANCE = {
    ("arc_easy", "acc"): 0.25, ("arc_easy", "acc_norm"): 0.25,
    ("arc_challenge", "acc"): 0.25, ("arc_challenge", "acc_norm"): 0.25,
    ("boolq", "acc"): 0.5, ("winogrande", "acc"): 0.5,
    **{(f"probe_logic:{d}", m): 1 / d for d in (3, 4, 5) for m in ("acc", "acc_norm")},
    ("probe_math:1", "exact_match"): 0.0, ("probe_math:2", "exact_match"): 0.0,
    ("probe_math:3", "exact_match"): 0.0,
}
for d in (1, 2, 4, 8):
    CHANCE[(f"probe_chain:{d}", "acc")] = 0.1
    CHANCE[(f"probe_chain:{d}", "p_gold")] = 0.1
    CHANCE[(f"probe_chain:{d}", "digit_score")] = 1 - 2.5 / 9
for t in ("boolean_expressions", "sports_understanding", "navigate", "web_of_lies",
          "causal_judgement"):
    CHANCE[(f"bbh_{t}", "exact_match")] = 0.5

out = sys.argv[1] if len(sys.argv) > 1 else "out/survey"
print("| task | metric | n | score ± s.e. | chance | (score − chance) / s.e. |")
print("| --- | --- | ---: | ---: | ---: | ---: |")
for f in sorted(glob.glob(os.path.join(out, "*.json"))):
    doc = json.load(open(f))
    for task, res in doc["results"].items():
        n = doc["n-samples"][task]["effective"]
        for key, v in res.items():
            if "_stderr" in key or key == "alias" or "perplexity" in key:
                continue
            metric = key.split(",")[0]
            se = res.get(f"{metric}_stderr,none")
            c = CHANCE.get((task, metric))
            z = f"{(v - c) / se:+.1f}" if c is not None and se else "–"
            print(f"| {task} | {metric} | {n} | {v:.3f}" + (f" ± {se:.3f}" if se else "") + " | "
                  f"{'–' if c is None else f'{c:.3f}'} | {z} |")
