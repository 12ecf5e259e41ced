"""Writes expected.json: what lm-evaluation-harness itself does on reprise's BBH data.

For every BBH task, lm-eval's own bbh_zeroshot_<task> and bbh_fewshot_<task> (their YAMLs, built
by lm-eval's TaskManager, with the dataset read from data/bbh/bbh/<task>.json instead of the Hub)
render the prompts of three items (the first two and the last) and score crafted model responses
through the tasks' own filter ensembles and process_results (exact_match). Run once by hand; the
C++ test (tests/unit/test_eval_bbh_lmeval.cpp) reads the JSON and needs no Python.

Usage: python make_expected.py [repo root]   (see README.md beside this file)
"""

import json
import re
import sys
from pathlib import Path

import lm_eval
import yaml
from lm_eval.api.instance import Instance
from lm_eval.tasks import TaskManager

ROOT = Path(sys.argv[1] if len(sys.argv) > 1 else Path(__file__).resolve().parents[3])
DATA = ROOT / "data" / "bbh" / "bbh"
OUT = Path(__file__).resolve().parent / "expected.json"

MC = "multiple_choice"
KIND = {
    "boolean_expressions": "true_false",
    "causal_judgement": "yes_no",
    "navigate": "yes_no",
    "formal_fallacies": "valid_invalid",
    "dyck_languages": "dyck",
    "multistep_arithmetic_two": "number",
    "object_counting": "number",
    "sports_understanding": "map",
    "web_of_lies": "map",
    "word_sorting": "word_sort",
}


def choices(doc):
    """The option texts after (A), (B), ... as the task's MultiChoiceRegexFilter reads them."""
    return [m.strip() for m in re.findall(r"\([A-Z]\)([^\n^(]*)", doc["input"])]


def responses(kind, doc):
    t = doc["target"]
    out = [t, " " + t, t + ".", t.lower(), t.upper(), '"' + t + '"', t + "\n", " " + t + ",",
           "The answer is " + t + ".", "I do not know.", "", "[invalid]", t + "\\"]
    if kind == "true_false":
        out += ["true", "The expression evaluates to False, not True.", "TrueFalse",
                "It is True", "FALSE"]
    elif kind == "yes_no":
        out += ["yes", "No, because of the rules.", "Yesterday, no.", "NO", "Yes!", "nope"]
    elif kind == "valid_invalid":
        out += ["invalid", "The argument is valid.", "Invalid", "validity", "deductively valid"]
    elif kind == "dyck":
        out += ["] ) }", "The sequence closes with ) ].", "abc", '"] >"', "x  y", "A: ] ]",
                "{ [ < > ] }"]
    elif kind == "number":
        out += ["42", "The answer is -17.", "twenty five", "one hundred and five", "twenty-one",
                "someone has seven apples", "seven", "nine", "eight", "Eighty", "FIVE", "1,234",
                "- 5", "three thousand two hundred", "a million", "a thousand and five",
                "trillion", "thousand thousand", "two thousand, three hundred and twelve",
                "It is often so", "ninety nine", "there are six", "zero"]
    elif kind == "map":
        out += ["yes", "no", "Yes.", "It is plausible.", "not plausible", "implausible",
                "No, it's not plausible", "So Ka tells the truth.", "Jim does not tell the truth",
                "Jim is not telling the truth.", "Bob is telling the truth", "maybe", "Nobody"]
    elif kind == "word_sort":
        words = doc["input"].split("List:")[1].split()
        srt = sorted(words)
        out += [" ".join(srt), ", ".join(srt), " ".join(reversed(srt)),
                " ".join(srt + srt[:1]), srt[0].upper() + " " + " ".join(srt[1:]),
                "Sorted: " + " ".join(srt) + " done", " ".join(srt[:2])]
    else:  # multiple choice
        cs = choices(doc)
        out += ["(B)", "(b)", "answer: C", "Answer:d", "So the answer is B.", "(Z)",
                "option:B and (C)", "A) first", "Answer: Because", "Options: (A)"]
        if cs:
            out += [cs[-1], "I pick " + cs[-1].upper() + "!", cs[0].lower() + ".",
                    "Both " + cs[0] + " and " + cs[-1]]
    return out


def build(tm, name, task):
    cfg = {"task": name, "dataset_path": "json", "dataset_name": None,
           "dataset_kwargs": {"data_files": {"test": str(DATA / (task + ".json"))},
                              "field": "examples"}}
    return tm._factory.build(tm._entry(name), overrides=cfg, registry=tm._index)


def score(t, doc, doc_id, ctx, texts):
    """lm-eval's evaluator path for one doc: an Instance per response, the task's filters,
    then process_results per filter key (results key "<metric>,<filter>")."""
    insts = []
    for k, text in enumerate(texts):
        inst = t.construct_requests(doc, ctx, metadata=(t.config.task, doc_id, 1))
        inst = inst[0] if isinstance(inst, list) else inst
        inst.doc_id = k  # one "doc" per response, so the filters keep them apart
        inst.resps = [text]
        insts.append(inst)
    t._instances = insts
    out = []
    for inst, text in zip(insts, texts):
        filtered, scores = {}, {}
        out.append({"response": text, "filtered": filtered, "scores": scores})
    for f in t._filters:
        # One ensemble at a time, so one that raises (word2number on some word numbers) leaves
        # the others' results.
        for k, inst in enumerate(insts):
            t._instances = [inst]
            try:
                f.apply([inst])
            except Exception as e:  # lm-eval itself stops here; recorded as such
                out[k]["filtered"][f.name] = None
                out[k]["error"] = f"{f.name}: {type(e).__name__}: {e}"
                continue
            v = inst.filtered_resps[f.name]
            out[k]["filtered"][f.name] = v
            for metric, value in t.process_results(doc, [v]).items():
                out[k]["scores"][f"{metric},{f.name}"] = value
    return out


def main():
    tm = TaskManager()
    names = sorted(p.stem for p in DATA.glob("*.json"))
    assert len(names) == 27, names
    tasks = {}
    for task in names:
        for variant in ("zeroshot", "fewshot"):
            name = f"bbh_{variant}_{task}"
            t = build(tm, name, task)
            docs = list(t.test_docs())
            entry = {
                "version": t.config.metadata["version"],
                "num_fewshot": t.config.num_fewshot,
                "until": t.config.generation_kwargs["until"],
                "filters": [f.name for f in t._filters],
                "n_docs": len(docs),
                "docs": [],
            }
            # The first two items, the last, and the first whose question has a non-ASCII
            # character (options with accents or no-break spaces), if any.
            picks = {0, 1, len(docs) - 1}
            picks |= {next((i for i, d in enumerate(docs) if not d["input"].isascii()), 0)}
            for i in sorted(picks):
                doc = docs[i]
                ctx = t.fewshot_context(doc, t.config.num_fewshot)
                texts = responses(KIND.get(task, MC), doc)
                if variant == "fewshot":
                    texts = texts[:13]  # no filter: the generic responses test exact_match
                entry["docs"].append({"index": i, "target": doc["target"], "context": ctx,
                                      "responses": score(t, doc, i, ctx, texts)})
            tasks[name] = entry
    # The group files are plain YAML (loading the groups would fetch every subtask from the Hub).
    groups = {}
    for g in ("bbh_zeroshot", "bbh_fewshot"):
        path = Path(lm_eval.__file__).parent / "tasks" / "bbh" / g[4:] / f"_{g}.yaml"
        cfg = yaml.safe_load(path.read_text())
        groups[g] = {"version": cfg["metadata"]["version"], "tasks": cfg["task"],
                     "metrics": [m["metric"] + "," + m.get("filter_list", "none")
                                 for m in cfg["aggregate_metric_list"]]}
    # word2number itself on number words, beyond what the filter's pattern lets through.
    from word2number import w2n
    phrases = ["one hundred twenty three thousand four hundred fifty six",
               "two million three thousand", "five billion", "seven hundred million",
               "nine thousand ninety", "twenty & one", "hundred", "thousand five",
               "million thousand", "one two three four five", "ninety nine hundred",
               "three billion two million one thousand", "eleven hundred and one",
               "twelve thousand thousand", "fourteen", "sixty seven", "and", "forty-two"]
    word_numbers = []
    for p in phrases:
        try:
            word_numbers.append({"words": p, "value": w2n.word_to_num(p)})
        except Exception as e:
            word_numbers.append({"words": p, "value": None, "error": f"{type(e).__name__}: {e}"})
    canary = json.load(open(DATA / "boolean_expressions.json"))["canary"]
    doc = {"canary": canary, "lm_eval": lm_eval.__version__, "groups": groups,
           "word_numbers": word_numbers, "tasks": tasks}
    OUT.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {OUT}: {len(tasks)} tasks")


if __name__ == "__main__":
    main()
