#!/usr/bin/env python3
"""Writes a Hugging Face copy of the Qwen3.5 synth fixture, as a Qwen3_5ForConditionalGeneration.

  PYTHON_WITH_GGUF tests/data/hf/make_qwen35_hf.py

Reads tests/data/fixtures/qwen35-tiny-f32.gguf with the `gguf` package from PyPI (0.19.0 was used)
and numpy, and writes tests/data/hf/qwen35-tiny-f32/{config.json,model.safetensors}: the same
model as transformers' Qwen3.5 stores it, so that a correct HF loader computes what the GGUF
computes. No tokenizer files (the tests feed token ids).

The inverse of what llama.cpp's converter does to a Qwen3.5 checkpoint (convert_hf_to_gguf.py,
conversion/qwen.py at llama-cpp-python 0.3.36's llama.cpp: Qwen3_5TextModel, its bases
_LinearAttentionVReorderBase and Qwen3NextModel, and gguf-py's tensor_mapping.py for the names):
  - the text model sits under model.language_model. (the converter strips "language_model.");
  - every norm but the DeltaNet output norm (linear_attn.norm) is stored as w where the GGUF
    stores w + 1: HF stores w_gguf - 1 (exact in float32 for weights in [0.5, 2]; checked);
  - linear_attn.A_log is log(-ssm_a) (the converter writes -exp(A_log)); each value is the
    float32 whose -exp, computed in float64 and rounded to float32, is ssm_a exactly (checked);
  - linear_attn.conv1d.weight is [channels, 1, taps] (the converter squeezes the 1);
  - value heads: HF groups them by key head ([k0: v0..v(r-1), k1: ...]), the converter reorders
    them to tiled order ([v0 of k0, v0 of k1, ..., v1 of k0, ...]); undone here on the V rows of
    in_proj_qkv, the V channels of conv1d, the rows of in_proj_z, in_proj_b, in_proj_a, dt_bias
    and A_log, and the columns of out_proj;
  - the attention's q_proj (query and gate rows per head) and the FFN are stored as they are.
Each tensor is then converted forward again by this script's copy of those converter steps and
must give back the GGUF tensor bit for bit. Two small tensors a real checkpoint has beside the
text model (a vision tower's and the MTP head's) are written too; a loader must ignore them.
"""
import os, sys

import gguf
import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_arch_hf import FIXTURES, f32, write_checkpoint  # noqa: E402

TEXT = "model.language_model."


def tiled_to_grouped(w, axis, n_k, per_k, head):
    """Undoes the converter's _reorder_v_heads along `axis` (size n_k * per_k * head)."""
    w = np.moveaxis(w, axis, 0)
    rest = w.shape[1:]
    w = w.reshape(per_k, n_k, head, *rest).swapaxes(0, 1).reshape(n_k * per_k * head, *rest)
    return np.ascontiguousarray(np.moveaxis(w, 0, axis))


def grouped_to_tiled(w, axis, n_k, per_k, head):
    """The converter's _reorder_v_heads: reshape to (n_k, per_k, head), swap the first two."""
    w = np.moveaxis(w, axis, 0)
    rest = w.shape[1:]
    w = w.reshape(n_k, per_k, head, *rest).swapaxes(0, 1).reshape(n_k * per_k * head, *rest)
    return np.ascontiguousarray(np.moveaxis(w, 0, axis))


def a_log(a):
    """float32 x with float32(-exp(float64(x))) == a, for every a (a < 0): log(-a) or a neighbour."""
    out = np.empty_like(a)
    for i, v in enumerate(a):
        x = np.float32(np.log(-np.float64(v)))
        cands, up, down = [x], x, x
        for _ in range(8):
            up, down = np.nextafter(up, np.float32(np.inf)), np.nextafter(down, np.float32(-np.inf))
            cands += [up, down]
        hits = [c for c in cands if np.float32(-np.exp(np.float64(c))) == v]
        assert hits, f"no float32 A_log gives {v}"
        out[i] = hits[0]
    return out


def main():
    r = gguf.GGUFReader(os.path.join(FIXTURES, "qwen35-tiny-f32.gguf"))
    assert r.fields["general.architecture"].contents() == "qwen35"
    meta = lambda k, d=None: r.fields[f"qwen35.{k}"].contents() if f"qwen35.{k}" in r.fields else d
    t = {x.name: np.array(x.data) for x in r.tensors}
    n_layer, n_head, head_dim = meta("block_count"), meta("attention.head_count"), meta("attention.key_length")
    n_k, n_v, d_k = meta("ssm.group_count"), meta("ssm.time_step_rank"), meta("ssm.state_size")
    d_v = meta("ssm.inner_size") // n_v
    per_k = n_v // n_k
    interval = meta("full_attention_interval")
    assert "attention.recurrent_layers" not in [k[len("qwen35."):] for k in r.fields]
    layer_types = ["linear_attention" if (l + 1) % interval else "full_attention" for l in range(n_layer)]
    sections = list(meta("rope.dimension_sections"))
    assert sections[3] == 0  # HF names three sections; the converter pads a 0
    text = {"model_type": "qwen3_5_text", "vocab_size": int(t["token_embd.weight"].shape[0]),
            "hidden_size": meta("embedding_length"), "intermediate_size": meta("feed_forward_length"),
            "num_hidden_layers": n_layer, "num_attention_heads": n_head,
            "num_key_value_heads": meta("attention.head_count_kv"), "head_dim": head_dim,
            "max_position_embeddings": meta("context_length"),
            "rms_norm_eps": f32(meta("attention.layer_norm_rms_epsilon")), "hidden_act": "silu",
            "attention_bias": False, "attn_output_gate": True,
            "linear_conv_kernel_dim": meta("ssm.conv_kernel"), "linear_key_head_dim": d_k,
            "linear_value_head_dim": d_v, "linear_num_key_heads": n_k, "linear_num_value_heads": n_v,
            "layer_types": layer_types, "full_attention_interval": interval, "mtp_num_hidden_layers": 1,
            # The converter: rope.dimension_count = int(head_dim * partial_rotary_factor).
            "rope_parameters": {"rope_type": "default", "rope_theta": f32(meta("rope.freq_base")),
                                "partial_rotary_factor": meta("rope.dimension_count") / head_dim,
                                "mrope_section": sections[:3], "mrope_interleaved": True},
            "dtype": "float32"}
    tied = "output.weight" not in t
    cfg = {"architectures": ["Qwen3_5ForConditionalGeneration"], "model_type": "qwen3_5",
           "tie_word_embeddings": tied, "text_config": text,
           "vision_config": {"model_type": "qwen3_5_vision", "depth": 1, "hidden_size": 8}}

    for k, w in t.items():
        if k.endswith("norm.weight") and not k.endswith("ssm_norm.weight"):
            assert np.array_equal((w - np.float32(1)) + np.float32(1), w), k
    minus1 = lambda w: w - np.float32(1)
    out = [(TEXT + "embed_tokens.weight", t["token_embd.weight"]), (TEXT + "norm.weight", minus1(t["output_norm.weight"]))]
    if not tied:
        out.append(("lm_head.weight", t["output.weight"]))
    forward = {}  # HF name -> (GGUF name, the converter's transform of the HF tensor)
    key_dim = n_k * d_k
    for l in range(n_layer):
        g = lambda role: t[f"blk.{l}.{role}"]
        p = f"{TEXT}layers.{l}."
        out += [(p + "input_layernorm.weight", minus1(g("attn_norm.weight"))),
                (p + "post_attention_layernorm.weight", minus1(g("post_attention_norm.weight"))),
                (p + "mlp.gate_proj.weight", g("ffn_gate.weight")), (p + "mlp.up_proj.weight", g("ffn_up.weight")),
                (p + "mlp.down_proj.weight", g("ffn_down.weight"))]
        if layer_types[l] == "full_attention":
            out += [(p + "self_attn.q_proj.weight", g("attn_q.weight")), (p + "self_attn.k_proj.weight", g("attn_k.weight")),
                    (p + "self_attn.v_proj.weight", g("attn_v.weight")),
                    (p + "self_attn.o_proj.weight", g("attn_output.weight")),
                    (p + "self_attn.q_norm.weight", minus1(g("attn_q_norm.weight"))),
                    (p + "self_attn.k_norm.weight", minus1(g("attn_k_norm.weight")))]
            continue
        assert f"blk.{l}.attn_q.weight" not in t
        ug = lambda w, axis, head: tiled_to_grouped(w, axis, n_k, per_k, head)
        rg = lambda w, axis, head: grouped_to_tiled(w, axis, n_k, per_k, head)
        qkv, conv = g("attn_qkv.weight"), g("ssm_conv1d.weight")
        a = p + "linear_attn."
        hf = {a + "in_proj_qkv.weight": np.concatenate([qkv[:2 * key_dim], ug(qkv[2 * key_dim:], 0, d_v)]),
              a + "in_proj_z.weight": ug(g("attn_gate.weight"), 0, d_v),
              a + "in_proj_b.weight": ug(g("ssm_beta.weight"), 0, 1),
              a + "in_proj_a.weight": ug(g("ssm_alpha.weight"), 0, 1),
              a + "dt_bias": ug(g("ssm_dt.bias"), 0, 1),
              a + "A_log": a_log(ug(g("ssm_a"), 0, 1)),
              a + "conv1d.weight": np.concatenate([conv[:2 * key_dim], ug(conv[2 * key_dim:], 0, d_v)])[:, None, :],
              a + "norm.weight": g("ssm_norm.weight"),
              a + "out_proj.weight": ug(g("ssm_out.weight"), 1, d_v)}
        # The converter's steps, forward: reorder V heads, then -exp(A_log) and squeeze.
        forward.update({
            a + "in_proj_qkv.weight": (f"blk.{l}.attn_qkv.weight",
                                       lambda w: np.concatenate([w[:2 * key_dim], rg(w[2 * key_dim:], 0, d_v)])),
            a + "in_proj_z.weight": (f"blk.{l}.attn_gate.weight", lambda w: rg(w, 0, d_v)),
            a + "in_proj_b.weight": (f"blk.{l}.ssm_beta.weight", lambda w: rg(w, 0, 1)),
            a + "in_proj_a.weight": (f"blk.{l}.ssm_alpha.weight", lambda w: rg(w, 0, 1)),
            a + "dt_bias": (f"blk.{l}.ssm_dt.bias", lambda w: rg(w, 0, 1)),
            a + "A_log": (f"blk.{l}.ssm_a", lambda w: np.float32(-np.exp(rg(w, 0, 1).astype(np.float64)))),
            a + "conv1d.weight": (f"blk.{l}.ssm_conv1d.weight",
                                  lambda w: np.concatenate([w[:2 * key_dim, 0], rg(w[2 * key_dim:, 0], 0, d_v)])),
            a + "norm.weight": (f"blk.{l}.ssm_norm.weight", lambda w: w),
            a + "out_proj.weight": (f"blk.{l}.ssm_out.weight", lambda w: rg(w, 1, d_v))})
        out += list(hf.items())
    for name, (gname, conv_fn) in forward.items():
        w = dict(out)[name]
        assert np.array_equal(conv_fn(w).astype(np.float32), t[gname]), name
    # What a real checkpoint also holds: a vision tower and the MTP head, not the text model's.
    out += [("model.visual.merger.norm.weight", np.ones(8, np.float32)),
            ("mtp.norm.weight", np.zeros(text["hidden_size"], np.float32))]
    write_checkpoint("qwen35-tiny-f32", out, cfg)


if __name__ == "__main__":
    main()
