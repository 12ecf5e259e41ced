#!/usr/bin/env python3
"""Regenerates the synth fixtures of the newer architectures and their llama.cpp goldens.

  PYTHON_WITH_GGUF tests/data/golden/make_synth_goldens.py REPRISE LLAMA_GOLDEN LLAMA_QUANTIZE [SHAPE...]

SHAPE is a `reprise synth --like` name without its "-tiny" (default: all of gemma3 gemma2
qwen3moe mixtral phi3 phi4 smollm3 qwen35), also the ARCH of the file names below. REPRISE is build/reprise (its
`synth --like SHAPE-tiny --type f32` writes the F32 fixtures); LLAMA_GOLDEN is scripts/golden/llama_golden.cpp and LLAMA_QUANTIZE llama.cpp's
tools/quantize, both built from llama.cpp commit 0c1e570 (the llama-cpp-python 0.3.36 sdist).
The interpreter needs the `gguf` package from PyPI (0.19.0 was used) for the path copies.

Writes, for each SHAPE (ARCH below):
  tests/data/fixtures/ARCH-tiny-f32.gguf, ARCH-tiny-q8_0.gguf (llama-quantize --pure Q8_0)
  tests/data/golden/ARCH-tiny-f32.json, ARCH-tiny-q8_0.json (with the dequantized_reference:
      llama.cpp on llama-quantize's own F32 dequantization of the Q8_0 file)
  tests/data/golden/ARCH-tiny-f32-path-{repeat,skip}.json: llama.cpp has no layer paths, so these
      ran a temporary GGUF whose blocks are physical copies in path order (a copied MoE block
      carries its router and experts). For Gemma each copy keeps its source layer's kind: attention.sliding_window_pattern is written as one bool per copy (the
      source's flags in path order, by llama.cpp's rule for the source's period), and llama.cpp
      gives every sliding-window layer the SWA rope base. smollm3's no-rope blocks are fixed by
      block index in llama.cpp ((i + 1) % 4 == 0), so its copies get identity blocks (zero
      attn_output and ffn_down) inserted where needed to put every layer on a block of its kind.
      `reprise export` of each path is run too, and must give llama.cpp the same logits and tokens
      as the copy (tests/model/test_arch_export.cpp then holds the export to these goldens
      without llama.cpp).
      For qwen35 each copy keeps its source
      layer's kind likewise, as per-block attention.recurrent_layers flags (paths in ARCH_PATHS).
phi4 (a Phi-4-mini-like phi3 file: rope on 12 of 16 head dimensions, long-rope factors with
original context 256) runs its F32 and Q8_0 goldens at two contexts, which choose the factors:
ARCH-tiny-{f32,q8_0}.json at 512 (beyond 256: the long factors) and ARCH-tiny-{f32,q8_0}-short.json
at 256 (the short ones); its path goldens at 512. llama.cpp rounds a context up to a multiple of
256 before choosing, so these two are contexts where it and reprise choose alike. The script
asserts that the two contexts give different logits. Each golden records its context (n_ctx).
Logits are rounded to 6 significant digits; logits_last (a repeat of the last row) is dropped.
"""
import json, os, subprocess, sys, tempfile

import gguf
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FIXTURES = os.path.join(REPO, "tests/data/fixtures")
GOLDEN = os.path.join(REPO, "tests/data/golden")
# 16 ids of the synth vocabulary: "once upon a time, there was a little girl named lily." as the
# golden tool tokenizes it with the fixture's vocabulary (byte tokens plus letter-pair merges).
PROMPT_TEXT = "once upon a time, there was a little girl named lily."
PATHS = {"repeat": [0, 1, 2, 1, 2, 3], "skip": [0, 1, 3]}
# qwen35-tiny has 6 layers (2 and 5 full attention): the repeat visits linear-attention layer 1 and
# full-attention layer 2 twice, the skip drops one of each kind.
ARCH_PATHS = {"qwen35": {"repeat": [0, 1, 2, 1, 2, 3, 4, 5], "skip": [0, 1, 3, 5]}}
# Long-rope fixtures run their main goldens at several contexts: {name suffix: n_ctx}.
CONTEXTS = {"phi4": {"": 512, "-short": 256}}
# llama.cpp's default sliding-window period when the file names none (gemma2: 2, gemma3: 6).
DEFAULT_PERIOD = {"gemma2": 2, "gemma3": 6}


def run(*args):
    return subprocess.run(list(args), check=True, capture_output=True, text=True).stdout


def swa_flags(reader, arch, n_layer):
    """Which layers slide, or None for an architecture without sliding-window layers."""
    if arch not in DEFAULT_PERIOD:
        return None
    field = reader.fields.get(f"{arch}.attention.sliding_window_pattern")
    if field is not None and field.types[0] == gguf.GGUFValueType.ARRAY:
        return [bool(x) for x in field.contents()]
    period = field.contents() if field is not None else DEFAULT_PERIOD[arch]
    return [period == 0 or l % period < period - 1 for l in range(n_layer)]


def no_rope_padded(layers, step=4):
    """smollm3 (llama.cpp: no rope on block i when (i + 1) % step == 0, by block index): `layers`
    with identity blocks (None) inserted so that every layer lands on a block of its own kind."""
    out = []
    for l in layers:
        while ((len(out) + 1) % step != 0) != ((l + 1) % step != 0):
            out.append(None)
        out.append(l)
    return out


def recurrent_flags(reader, arch, n_layer):
    """Which layers are Gated DeltaNet ones (qwen35), or None for other architectures."""
    if arch != "qwen35":
        return None
    field = reader.fields.get(f"{arch}.attention.recurrent_layers")
    if field is not None:
        return [bool(x) for x in field.contents()]
    field = reader.fields.get(f"{arch}.full_attention_interval")
    interval = field.contents() if field is not None else 4
    return [(l + 1) % interval != 0 for l in range(n_layer)]


def copy_along_path(src, dst, layers):
    """Writes src with its blocks physically copied in the order `layers`. A None block is an
    identity: layer 0's tensors with attn_output and ffn_down zero, so it adds exactly 0 to the
    residual stream (F32 files only)."""
    reader = gguf.GGUFReader(src)
    arch = reader.fields["general.architecture"].contents()
    n_layer = reader.fields[f"{arch}.block_count"].contents()
    flags = swa_flags(reader, arch, n_layer)
    recurrent = recurrent_flags(reader, arch, n_layer)
    writer = gguf.GGUFWriter(dst, arch)
    skip = {"general.architecture", f"{arch}.block_count", f"{arch}.attention.sliding_window_pattern",
            f"{arch}.attention.recurrent_layers", f"{arch}.full_attention_interval"}
    for field in reader.fields.values():
        if field.name in skip or field.name.startswith("GGUF."):
            continue
        vt = field.types[0]
        sub = field.types[-1] if vt == gguf.GGUFValueType.ARRAY else None
        writer.add_key_value(field.name, field.contents(), vt, sub_type=sub)
    writer.add_uint32(f"{arch}.block_count", len(layers))
    if flags is not None:
        writer.add_array(f"{arch}.attention.sliding_window_pattern", [flags[l] for l in layers])
    if recurrent is not None:  # each copy keeps its source layer's kind
        writer.add_array(f"{arch}.attention.recurrent_layers", [recurrent[l] for l in layers])
    tensors = []
    for t in reader.tensors:
        if not t.name.startswith("blk."):
            tensors.append((t.name, t))
    for i, l in enumerate(layers):
        for t in reader.tensors:
            if t.name.startswith(f"blk.{0 if l is None else l}."):
                role = t.name.split(".", 2)[2]
                if l is None and role in ("attn_output.weight", "ffn_down.weight"):
                    assert t.tensor_type == gguf.GGMLQuantizationType.F32, t.name
                    t = t._replace(data=np.zeros_like(t.data))
                tensors.append((f"blk.{i}." + role, t))
    for name, t in tensors:
        writer.add_tensor_info(name, t.data.shape, t.data.dtype, t.data.nbytes, t.tensor_type)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    for _, t in tensors:
        writer.write_tensor_data(t.data, tensor_endianess=reader.endianess)
    writer.close()


def rounded(rows):
    return [[float(f"{x:.6g}") for x in r] for r in rows]


def golden(tool, model, tokens, name, n_ctx=None):
    ctx = ["-c", str(n_ctx)] if n_ctx else []
    j = json.loads(run(tool, "-m", model, "--tokens", ",".join(map(str, tokens)), "-n", "16",
                       "--name", name, *ctx))
    assert n_ctx is None or j["n_ctx"] == n_ctx, (name, j["n_ctx"])
    j.pop("logits_last", None)
    j["logits_all"] = rounded(j["logits_all"])
    j["model_file"] = os.path.basename(model)
    return j


def main():
    reprise, tool, quantize = sys.argv[1:4]
    tmp = tempfile.mkdtemp()
    for arch in sys.argv[4:] or ("gemma3", "gemma2", "qwen3moe", "mixtral", "phi3", "phi4", "smollm3",
                                 "qwen35"):
        f32 = os.path.join(FIXTURES, f"{arch}-tiny-f32.gguf")
        q8 = os.path.join(FIXTURES, f"{arch}-tiny-q8_0.gguf")
        run(reprise, "synth", "--like", f"{arch}-tiny", "--type", "f32", "--seed", "1", "-f", "-o", f32)
        run(quantize, "--pure", f32, q8, "Q8_0", "1")
        deq = os.path.join(tmp, f"{arch}-deq.gguf")
        run(quantize, "--allow-requantize", "--pure", q8, deq, "F32", "1")
        ids = json.loads(run(tool, "-m", f32, "-p", PROMPT_TEXT, "--tokenize-only", "--no-bos"))["ids"]
        tokens = ids[:16]
        assert len(tokens) == 16, ids
        outs = {}
        for sfx, n_ctx in CONTEXTS.get(arch, {"": None}).items():
            outs[f"{arch}-tiny-f32{sfx}"] = golden(tool, f32, tokens, f"{arch}-tiny-f32{sfx}", n_ctx)
            main_q = golden(tool, q8, tokens, f"{arch}-tiny-q8_0{sfx}", n_ctx)
            ref = golden(tool, deq, tokens, f"{arch}-tiny-q8_0{sfx}-deq", n_ctx)
            main_q["dequantized_reference"] = {k: ref[k] for k in ("logits_all", "greedy_tokens",
                                                                    "greedy_max_logit")}
            outs[f"{arch}-tiny-q8_0{sfx}"] = main_q
        if arch in CONTEXTS:  # the contexts must choose different factors, or the test is moot
            a, b = (outs[f"{arch}-tiny-f32{sfx}"]["logits_all"] for sfx in CONTEXTS[arch])
            diff = max(abs(x - y) for ra, rb in zip(a, b) for x, y in zip(ra, rb))
            print(arch, "long vs short contexts: max |d logit|", diff)
            assert diff > 0.05, diff
        for kind, layers in ARCH_PATHS.get(arch, PATHS).items():
            copy = os.path.join(tmp, f"{arch}-{kind}.gguf")
            copy_along_path(f32, copy, no_rope_padded(layers) if arch == "smollm3" else layers)
            name = f"{arch}-tiny-f32-path-{kind}"
            j = golden(tool, copy, tokens, name)
            # reprise's own export of the path must be the same model to llama.cpp. (reprise
            # refuses to export a smollm3 path that moves a layer onto a block of the other kind,
            # which both of these paths do.)
            if arch != "smollm3":
                exported = os.path.join(tmp, f"{arch}-{kind}-export.gguf")
                run(reprise, "export", "-m", f32, "--path", ",".join(map(str, layers)), "-o",
                    exported, "--force")
                e = golden(tool, exported, tokens, name)
                assert (e["logits_all"], e["greedy_tokens"]) == \
                    (j["logits_all"], j["greedy_tokens"]), \
                    f"{name}: llama.cpp computes reprise's export differently from the copy"
            j["layer_path"] = layers
            outs[name] = j
        for name, j in outs.items():
            with open(os.path.join(GOLDEN, name + ".json"), "w") as f:
                json.dump(j, f, separators=(",", ":"))
                f.write("\n")
            print(name, "greedy", j["greedy_tokens"])


if __name__ == "__main__":
    main()
