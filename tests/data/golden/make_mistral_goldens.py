#!/usr/bin/env python3
"""Regenerates the Mistral-style sliding-window fixture and its goldens from a NumPy reference.

  PYTHON_WITH_GGUF tests/data/golden/make_mistral_goldens.py REPRISE LLAMA_GOLDEN LLAMA_QUANTIZE

Arguments as for make_synth_goldens.py (llama.cpp commit 0c1e570). llama.cpp ignores
`llama.attention.sliding_window` (its `llama` loader never reads the key), so it cannot be the
reference for a window. This script runs the Llama block of Hugging Face's Mistral in NumPy
(float64) straight from the GGUF tensors: a query at position p attends to keys p - W + 1 .. p.
It first checks that reference against llama.cpp with the window switched off (the same file, the
same tokens: what llama.cpp computes), and refuses to write anything unless every logit agrees
within 1e-3; then it writes the goldens with the window on.

Writes:
  tests/data/fixtures/mistral-tiny-f32.gguf (reprise synth --like mistral-tiny --seed 1), and
      mistral-tiny-q8_0.gguf (llama-quantize --pure Q8_0)
  tests/data/golden/mistral-tiny-f32.json, mistral-tiny-q8_0.json (both runs of the Q8_0 golden
      are the reference on llama-quantize's own F32 dequantization of the file: there is no
      llama.cpp run with 8-bit activations to hold it to), mistral-tiny-f32-path-{repeat,skip}.json
      (the reference on a GGUF with the blocks copied in path order; every copy slides).
Each golden also records `logits_all_no_window` (the reference without the window, what llama.cpp
computes), so tests can check the window changes the logits.
"""
import json, os, sys, tempfile

import gguf
import numpy as np
from gguf.quants import dequantize

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_synth_goldens import FIXTURES, GOLDEN, PATHS, PROMPT_TEXT, copy_along_path, golden, rounded, run  # noqa: E402

N_GREEDY = 16
REFERENCE = ("numpy float64 Mistral reference (tests/data/golden/make_mistral_goldens.py), checked "
             "without the window against llama.cpp 0c1e570")


class Llama:
    """The Llama block as GGUF stores it: interleaved rope pairs (2i, 2i+1), SwiGLU, RMSNorm."""

    def __init__(self, path):
        r = gguf.GGUFReader(path)
        self.f = {f.name: f.contents() for f in r.fields.values() if not f.name.startswith("GGUF.")}
        a = self.f["general.architecture"] + "."
        self.n_layer = self.f[a + "block_count"]
        self.n_head = self.f[a + "attention.head_count"]
        self.n_kv = self.f[a + "attention.head_count_kv"]
        self.eps = self.f[a + "attention.layer_norm_rms_epsilon"]
        self.theta = self.f[a + "rope.freq_base"]
        self.window = self.f.get(a + "attention.sliding_window", 0)
        self.t = {}
        for t in r.tensors:
            shape = tuple(int(x) for x in reversed(t.shape))  # GGUF lists the row length first
            self.t[t.name] = dequantize(t.data, t.tensor_type).astype(np.float64).reshape(shape)
        self.emb = self.t["token_embd.weight"]
        self.out = self.t.get("output.weight", self.emb)
        self.hd = self.t["blk.0.attn_q.weight"].shape[0] // self.n_head

    def norm(self, x, w):
        return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + self.eps) * w

    def rope(self, x):  # x [T, heads, hd]
        T, hd = x.shape[0], self.hd
        inv = self.theta ** (-np.arange(0, hd, 2) / hd)
        ang = np.arange(T)[:, None] * inv[None, :]
        c, s = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
        y = x.copy()
        y[..., 0::2] = x[..., 0::2] * c - x[..., 1::2] * s
        y[..., 1::2] = x[..., 0::2] * s + x[..., 1::2] * c
        return y

    def logits(self, tokens, window):
        """Logits [T, n_vocab] at every position; window 0 = causal attention over all keys."""
        T = len(tokens)
        x = self.emb[tokens]
        p = np.arange(T)
        mask = p[None, :] <= p[:, None]
        if window > 0:
            mask &= p[None, :] > p[:, None] - window
        group = self.n_head // self.n_kv
        for l in range(self.n_layer):
            w = lambda n: self.t[f"blk.{l}.{n}.weight"]
            h = self.norm(x, w("attn_norm"))
            q = self.rope((h @ w("attn_q").T).reshape(T, self.n_head, self.hd))
            k = self.rope((h @ w("attn_k").T).reshape(T, self.n_kv, self.hd))
            v = (h @ w("attn_v").T).reshape(T, self.n_kv, self.hd)
            ctx = np.empty_like(q)
            for hh in range(self.n_head):
                s = q[:, hh] @ k[:, hh // group].T / np.sqrt(self.hd)
                s = np.where(mask, s, -np.inf)
                s = np.exp(s - s.max(axis=1, keepdims=True))
                ctx[:, hh] = (s / s.sum(axis=1, keepdims=True)) @ v[:, hh // group]
            x = x + ctx.reshape(T, -1) @ w("attn_output").T
            h = self.norm(x, w("ffn_norm"))
            g, u = h @ w("ffn_gate").T, h @ w("ffn_up").T
            x = x + (g / (1 + np.exp(-g)) * u) @ w("ffn_down").T
        return self.norm(x, self.t["output_norm.weight"]) @ self.out.T

    def run(self, tokens, window):
        """Prompt logits, then N_GREEDY greedy tokens (a whole forward per step: the prompt rows
        do not depend on later tokens)."""
        seq = list(tokens)
        for _ in range(N_GREEDY):
            seq.append(int(np.argmax(self.logits(seq, window)[-1])))
        full = self.logits(seq, window)
        greedy = seq[len(tokens):]
        return {"logits_all": rounded(full[:len(tokens)]), "greedy_tokens": greedy,
                "greedy_max_logit": [float(f"{full[len(tokens) - 1 + i].max():.6g}")
                                     for i in range(N_GREEDY)]}


def check_against_llamacpp(tool, path, tokens, model):
    """The reference without a window must be llama.cpp's own computation."""
    ref = np.array(golden(tool, path, tokens, "check")["logits_all"])
    ours = model.logits(tokens, 0)
    d = float(np.abs(ours - ref).max())
    print(f"{os.path.basename(path)}: reference without window vs llama.cpp max |dlogit| {d:.2e}")
    if d > 1e-3:
        sys.exit(f"the NumPy reference disagrees with llama.cpp on {path}: {d}")
    return d


def record(name, model_file, model, tokens, layers=None):
    j = {"name": name, "model_file": model_file, "n_vocab": int(model.emb.shape[0]),
         "n_layer_file": model.n_layer, "n_embd": int(model.emb.shape[1]), "reference": REFERENCE,
         "sliding_window": model.window, "prompt_tokens": tokens}
    if layers is not None:
        j["layer_path"] = layers
    j.update(model.run(tokens, model.window))
    j["logits_all_no_window"] = rounded(model.logits(tokens, 0))
    return j


def main():
    reprise, tool, quantize = sys.argv[1:4]
    tmp = tempfile.mkdtemp()
    f32 = os.path.join(FIXTURES, "mistral-tiny-f32.gguf")
    q8 = os.path.join(FIXTURES, "mistral-tiny-q8_0.gguf")
    run(reprise, "synth", "--like", "mistral-tiny", "--type", "f32", "--seed", "1", "-f", "-o", f32)
    run(quantize, "--pure", f32, q8, "Q8_0", "1")
    ids = json.loads(run(tool, "-m", f32, "-p", PROMPT_TEXT, "--tokenize-only", "--no-bos"))["ids"]
    tokens = ids[:16]
    assert len(tokens) == 16, ids
    m32 = Llama(f32)
    assert 0 < m32.window < len(tokens), m32.window
    check_against_llamacpp(tool, f32, tokens, m32)
    outs = {"mistral-tiny-f32": record("mistral-tiny-f32", os.path.basename(f32), m32, tokens)}
    mq = Llama(q8)  # llama-quantize's blocks, dequantized by gguf-py
    deq = os.path.join(tmp, "mistral-deq.gguf")
    run(quantize, "--allow-requantize", "--pure", q8, deq, "F32", "1")
    check_against_llamacpp(tool, deq, tokens, mq)
    jq = record("mistral-tiny-q8_0", os.path.basename(q8), mq, tokens)
    jq["dequantized_reference"] = {k: jq[k] for k in ("logits_all", "greedy_tokens",
                                                       "greedy_max_logit")}
    outs["mistral-tiny-q8_0"] = jq
    for kind, layers in PATHS.items():
        copy = os.path.join(tmp, f"mistral-{kind}.gguf")
        copy_along_path(f32, copy, layers)
        mc = Llama(copy)
        check_against_llamacpp(tool, copy, tokens, mc)
        name = f"mistral-tiny-f32-path-{kind}"
        outs[name] = record(name, os.path.basename(f32), mc, tokens, layers)
    for name, j in outs.items():
        d = np.abs(np.array(j["logits_all"]) - np.array(j["logits_all_no_window"])).max(axis=1)
        print(name, "greedy", j["greedy_tokens"], "window changes logits by up to",
              f"{d.max():.3f} (first position past it {d[m32.window]:.3f})")
        with open(os.path.join(GOLDEN, name + ".json"), "w") as f:
            json.dump(j, f, separators=(",", ":"))
            f.write("\n")


if __name__ == "__main__":
    main()
