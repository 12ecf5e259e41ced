#!/usr/bin/env python3
"""Regenerates the SmolLM2-135M-Instruct goldens from a reference llama.cpp build.

  tests/data/golden/make_smollm2_goldens.py LLAMA_GOLDEN LLAMA_SIMPLE LLAMA_QUANTIZE [MODEL]

LLAMA_GOLDEN is the lead's golden tool (libllama, 1 thread, F32 KV cache, no flash attention,
no repacking, the prompt as one batch with logits at every position, then greedy decoding);
LLAMA_SIMPLE is llama.cpp's examples/simple. Both built from llama.cpp commit 0c1e570.
MODEL defaults to models/SmolLM2-135M-Instruct.Q4_1.gguf (scripts/fetch-models.sh).
LLAMA_QUANTIZE (tools/quantize) dequantizes it to F32 (--allow-requantize ... F32) for the
"dequantized_reference": llama.cpp on the same weights without its 8-bit activation rounding.

Writes tests/data/golden/smollm2-<name>.json for each prompt and tests/data/tokenizer/smollm2.json.
Logits are cut down to keep the files small: the TOP_K largest logits of every prompt position
plus the whole row at the last position.
"""
import json, os, subprocess, sys

TOP_K = 40
N_GREEDY = 32
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
MODEL_REL = "models/SmolLM2-135M-Instruct.Q4_1.gguf"

# The model's own chat template (tokenizer.chat_template) with no system message of ours: it
# inserts its default system turn.
CHAT = ("<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face"
        "<|im_end|>\n<|im_start|>user\nHow many days are in a week?<|im_end|>\n"
        "<|im_start|>assistant\n")

# Prompts whose 32 greedy tokens do not pass a near-tie (see docs/smollm2.md: most free-running
# prompts meet a top-2 margin below llama.cpp's own activation-rounding error within 32 tokens).
PROMPTS = [  # name, text, parse special tokens
    ("plain", "The United States of America", False),
    ("code", "def add(a, b):\n", False),
    ("qa", "Question: What is 3 + 5?\nAnswer:", False),
    ("chat", CHAT, True),
]

TOKENIZER_CASES = [
    # digits and numbers: smollm splits every digit
    "0", "7", "42", "123", "2024", "1234567890", "3.14159", "-17", "1,000,000", "0x1F", "1e-5",
    "v2.0.1", "Call 555-0123 now", "in 1999 and 2000", "12:30pm", "$9.99", "50%", "½ cup",
    "٣ and ۴ and ７",
    # words, case, contractions
    "Hello world", " Hello world", "HELLO", "hello", "I'm", "you're", "they'll", "we've", "don't",
    "it's", "IT'S", "John's book", "state-of-the-art", "e-mail", "C++", "naïve café",
    # code
    "def f(x):\n    return x**2", "for (int i = 0; i < n; ++i) {}", "if x == 1:\n\tpass",
    "#include <stdio.h>", "print(\"hi\")", "a_b_c = [1, 2, 3]", "SELECT * FROM t;", "x += 1 // y",
    "https://huggingface.co/HuggingFaceTB", "user@example.com", "<div class=\"a\">b</div>",
    # unicode, CJK, emoji
    "Ünïcödé", "Привет мир", "你好，世界", "こんにちは", "안녕하세요", "مرحبا", "שלום", "नमस्ते",
    "🦙", "🚀 rocket", "😶‍🌫️", "👍🏽", "🇫🇷", "∑ x² ≤ ∞", "αβγ", "ﬁ ligature", "\u00a0nbsp",
    # whitespace runs and newlines
    " ", "  ", "   ", "    x", "\t", "\t\t", "\n", "\n\n", "\n\n\n", "a\nb", "a \n b", "\r\n",
    "trailing   ", "   leading", "mid    space", " \t \n ",
    # special token texts (only tokens with parse_special)
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>user\nHi<|im_end|>",
]
SPECIAL = {"<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|im_start|>user\nHi<|im_end|>"}


def golden_tool(tool, model, args):
    out = subprocess.run([tool, "-m", model] + args, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def simple_text(simple, model, prompt):
    out = subprocess.run([simple, "-m", model, "-n", str(N_GREEDY), prompt], check=True,
                         capture_output=True, text=True)
    return out.stdout


def top_entries(rows):
    return [[[i, row[i]] for i in sorted(range(len(row)), key=lambda i: -row[i])[:TOP_K]]
            for row in rows]


def main():
    tool, simple, quantize = sys.argv[1], sys.argv[2], sys.argv[3]
    model = sys.argv[4] if len(sys.argv) > 4 else os.path.join(REPO, MODEL_REL)
    f32 = "/tmp/smollm2-dequantized-f32.gguf"
    subprocess.run([quantize, "--allow-requantize", model, f32, "F32", "1"], check=True,
                   capture_output=True)
    for name, text, special in PROMPTS:
        args = ["-p", text, "-n", str(N_GREEDY), "--name", "smollm2-" + name]
        args += ["--special"] if special else []
        g = golden_tool(tool, model, args)
        deq = golden_tool(tool, f32, args)
        assert deq["prompt_tokens"] == g["prompt_tokens"]
        out = {
            "name": g["name"], "model_file": MODEL_REL,
            "source": "llama.cpp 0c1e570 via tests/data/golden/make_smollm2_goldens.py",
            "n_vocab": g["n_vocab"], "n_threads": g["n_threads"], "kv_cache_type": g["kv_cache_type"],
            "prompt_text": text, "parse_special": special, "prompt_tokens": g["prompt_tokens"],
            "logits_top": top_entries(g["logits_all"]), "logits_last": g["logits_last"],
            "greedy_tokens": g["greedy_tokens"], "greedy_max_logit": g["greedy_max_logit"],
            "llama_simple_text": simple_text(simple, model, text),
            "dequantized_reference": {"logits_top": top_entries(deq["logits_all"]),
                                      "logits_last": deq["logits_last"],
                                      "greedy_tokens": deq["greedy_tokens"]},
        }
        path = os.path.join(REPO, "tests", "data", "golden", "smollm2-%s.json" % name)
        with open(path, "w", encoding="utf-8") as f:
            json.dump(out, f, ensure_ascii=False, separators=(",", ":"))
            f.write("\n")
    cases = []
    for text in TOKENIZER_CASES:
        special = text in SPECIAL
        ids = golden_tool(tool, model, ["-p", text, "--tokenize-only", "--no-bos"] +
                          (["--special"] if special else []))["ids"]
        case = {"text": text, "ids": ids}
        if special:
            case["parse_special"] = True
        cases.append(case)
    # The special texts also as plain text, where they must not become their tokens.
    for text in sorted(SPECIAL):
        cases.append({"text": text, "ids": golden_tool(tool, model, ["-p", text, "--tokenize-only",
                                                                      "--no-bos"])["ids"]})
    path = os.path.join(REPO, "tests", "data", "tokenizer", "smollm2.json")
    with open(path, "w", encoding="utf-8") as f:
        f.write('{"vocab_file":"%s","add_special":false,"parse_special":false,' % MODEL_REL)
        f.write('"source":"llama.cpp 0c1e570 (libllama) via tests/data/golden/make_smollm2_goldens.py; '
                'a case with parse_special true overrides the file\'s flag","cases":[\n')
        f.write(",\n".join(json.dumps(c, ensure_ascii=False) for c in cases))
        f.write("\n]}\n")
    os.remove(f32)
    print("%d tokenizer cases, %d prompts" % (len(cases), len(PROMPTS)))


if __name__ == "__main__":
    main()
