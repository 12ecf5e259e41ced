#!/usr/bin/env python3
"""Writes Hugging Face copies of the synth GGUF fixtures of the newer architectures.

  PYTHON_WITH_GGUF tests/data/hf/make_arch_hf.py [ARCH...]

ARCH is one of gemma3 gemma2 qwen3moe mixtral phi3 phi4 (default: all). Reads
tests/data/fixtures/ARCH-tiny-f32.gguf with the `gguf` package from PyPI (0.19.0 was used) and
numpy, and writes tests/data/hf/ARCH-tiny-f32/{config.json,model.safetensors}: the same weights
under transformers' names and conventions, so that a correct HF loader computes what the GGUF
computes. No tokenizer files (the tests feed token ids). The conversions undo what llama.cpp's
convert_hf_to_gguf.py does:
  - Mixtral (GGUF `llama`): Q/K rows back from interleaved rope pairs to rotate-half order,
    W_hf = W_gguf.reshape(n, d/2, 2, in).swapaxes(1, 2).reshape(n * d, in); the 3-D expert
    tensors split into block_sparse_moe.experts.E.w1 (gate), w3 (up), w2 (down).
  - Qwen3-MoE: experts split into mlp.experts.E.{gate,up,down}_proj, the router is mlp.gate.
  - Phi-3: the fused qkv_proj and gate_up_proj are stored fused in both formats.
  - phi4 (a Phi-4-mini-like phi3 file): rope.dimension_count becomes partial_rotary_factor,
    and the rope_factors_long/short tensors and rope.scaling.original_context_length become
    rope_scaling {"type": "longrope", long_factor, short_factor} and the top-level
    original_max_position_embeddings, as in Phi-4-mini-instruct's config.json (transformers
    derives the attention factor from max_position_embeddings / original, as the GGUF
    converter did when it wrote rope.scaling.attn_factor).
  - Gemma: HF's RMSNorm multiplies by (1 + w), and the GGUF stores 1 + w: every norm weight is
    w_gguf - 1 (exact in float32 for weights in [0.5, 2], which the fixtures' are; checked).
The safetensors file is written directly (8-byte header length, JSON header, raw little-endian
F32 data), so no safetensors package is needed.
"""
import json, os, struct, sys

import gguf
import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
FIXTURES = os.path.join(REPO, "tests/data/fixtures")
OUT = os.path.join(REPO, "tests/data/hf")

CLASSES = {"gemma3": ("Gemma3ForCausalLM", "gemma3_text"), "gemma2": ("Gemma2ForCausalLM", "gemma2"),
           "qwen3moe": ("Qwen3MoeForCausalLM", "qwen3_moe"), "mixtral": ("MixtralForCausalLM", "mixtral"),
           "phi3": ("Phi3ForCausalLM", "phi3"), "phi4": ("Phi3ForCausalLM", "phi3")}


def f32(x):
    """A float32 metadata value as the double that reads back to the same float32."""
    return float(np.float32(x))


def write_checkpoint(folder, tensors, cfg):
    """A Hugging Face checkpoint folder under OUT: model.safetensors and config.json."""
    d = os.path.join(OUT, folder)
    os.makedirs(d, exist_ok=True)
    write_safetensors(os.path.join(d, "model.safetensors"), tensors)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=2)
        f.write("\n")
    print(d, len(tensors), "tensors")


def write_safetensors(path, tensors):
    header, offset, blobs = {}, 0, []
    for name, a in tensors:
        a = np.ascontiguousarray(a, dtype="<f4")
        header[name] = {"dtype": "F32", "shape": list(a.shape), "data_offsets": [offset, offset + a.nbytes]}
        offset += a.nbytes
        blobs.append(a.tobytes())
    header["__metadata__"] = {"format": "pt"}
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def convert(name):
    r = gguf.GGUFReader(os.path.join(FIXTURES, f"{name}-tiny-f32.gguf"))
    arch = r.fields["general.architecture"].contents()
    meta = lambda k, d=None: r.fields[f"{arch}.{k}"].contents() if f"{arch}.{k}" in r.fields else d
    t = {x.name: np.array(x.data) for x in r.tensors}
    n_layer, n_head, n_kv = meta("block_count"), meta("attention.head_count"), meta("attention.head_count_kv")
    d_model = meta("embedding_length")
    head_dim = meta("attention.key_length", d_model // n_head)
    gemma = name.startswith("gemma")
    cls, model_type = CLASSES[name]
    cfg = {"architectures": [cls], "model_type": model_type, "vocab_size": int(t["token_embd.weight"].shape[0]),
           "hidden_size": d_model, "intermediate_size": meta("feed_forward_length"),
           "num_hidden_layers": n_layer, "num_attention_heads": n_head, "num_key_value_heads": n_kv,
           "head_dim": head_dim, "max_position_embeddings": meta("context_length"),
           "rms_norm_eps": f32(meta("attention.layer_norm_rms_epsilon")),
           "rope_theta": f32(meta("rope.freq_base", 10000.0)), "rope_scaling": None,
           "tie_word_embeddings": "output.weight" not in t, "attention_bias": False,
           "torch_dtype": "float32"}
    if gemma:
        cfg["hidden_activation"] = "gelu_pytorch_tanh"
        cfg["query_pre_attn_scalar"] = head_dim  # llama.cpp's choice for every non-27B size
        cfg["sliding_window"] = meta("attention.sliding_window")
        pattern = meta("attention.sliding_window_pattern", 2 if name == "gemma2" else 6)
        cfg["layer_types"] = ["sliding_attention" if l % pattern < pattern - 1 else "full_attention"
                              for l in range(n_layer)]
        if name == "gemma2":
            cfg["attn_logit_softcapping"] = f32(meta("attn_logit_softcapping"))
            cfg["final_logit_softcapping"] = f32(meta("final_logit_softcapping"))
        else:
            cfg["rope_local_base_freq"] = f32(meta("rope.freq_base_swa", 10000.0))
            cfg["final_logit_softcapping"] = None
            cfg["attn_logit_softcapping"] = None
    else:
        cfg["hidden_act"] = "silu"
    if "expert_count" in [k.split(".", 1)[1] for k in r.fields if k.startswith(arch + ".")]:
        if name == "mixtral":
            cfg["num_local_experts"] = meta("expert_count")
        else:
            cfg["num_experts"] = meta("expert_count")
            cfg["moe_intermediate_size"] = meta("expert_feed_forward_length")
            cfg["norm_topk_prob"] = True
            cfg["decoder_sparse_step"] = 1
            cfg["mlp_only_layers"] = []
        cfg["num_experts_per_tok"] = meta("expert_used_count")
    phi = name in ("phi3", "phi4")
    if name == "phi3":
        cfg["sliding_window"] = meta("attention.sliding_window")  # ignored, as llama.cpp does
    if name == "phi4":
        cfg["partial_rotary_factor"] = meta("rope.dimension_count") / head_dim
        cfg["original_max_position_embeddings"] = meta("rope.scaling.original_context_length")
        cfg["rope_scaling"] = {"type": "longrope",
                               "long_factor": [f32(x) for x in t["rope_factors_long.weight"]],
                               "short_factor": [f32(x) for x in t["rope_factors_short.weight"]]}

    def unpermute(w, n):  # interleaved rope pairs -> rotate-half halves
        return w.reshape(n, head_dim // 2, 2, -1).swapaxes(1, 2).reshape(w.shape)

    norm = (lambda w: w - np.float32(1)) if gemma else (lambda w: w)
    if gemma:
        for k, w in t.items():
            if k.endswith("norm.weight"):
                assert np.array_equal(norm(w) + np.float32(1), w), k
    out = [("model.embed_tokens.weight", t["token_embd.weight"]), ("model.norm.weight", norm(t["output_norm.weight"]))]
    if "output.weight" in t:
        out.append(("lm_head.weight", t["output.weight"]))
    for l in range(n_layer):
        g = lambda role: t.get(f"blk.{l}.{role}")
        p = f"model.layers.{l}."
        out.append((p + "input_layernorm.weight", norm(g("attn_norm.weight"))))
        if phi:
            out.append((p + "self_attn.qkv_proj.weight", g("attn_qkv.weight")))
        else:
            q, k = g("attn_q.weight"), g("attn_k.weight")
            if name == "mixtral":
                q, k = unpermute(q, n_head), unpermute(k, n_kv)
            out += [(p + "self_attn.q_proj.weight", q), (p + "self_attn.k_proj.weight", k),
                    (p + "self_attn.v_proj.weight", g("attn_v.weight"))]
        out.append((p + "self_attn.o_proj.weight", g("attn_output.weight")))
        if g("attn_q_norm.weight") is not None:
            out += [(p + "self_attn.q_norm.weight", norm(g("attn_q_norm.weight"))),
                    (p + "self_attn.k_norm.weight", norm(g("attn_k_norm.weight")))]
        if gemma:
            out += [(p + "post_attention_layernorm.weight", norm(g("post_attention_norm.weight"))),
                    (p + "pre_feedforward_layernorm.weight", norm(g("ffn_norm.weight"))),
                    (p + "post_feedforward_layernorm.weight", norm(g("post_ffw_norm.weight")))]
        else:
            out.append((p + "post_attention_layernorm.weight", g("ffn_norm.weight")))
        if g("ffn_gate_inp.weight") is not None:
            gate, up, down = g("ffn_gate_exps.weight"), g("ffn_up_exps.weight"), g("ffn_down_exps.weight")
            if name == "mixtral":
                out.append((p + "block_sparse_moe.gate.weight", g("ffn_gate_inp.weight")))
                for e in range(gate.shape[0]):
                    q = p + f"block_sparse_moe.experts.{e}."
                    out += [(q + "w1.weight", gate[e]), (q + "w2.weight", down[e]), (q + "w3.weight", up[e])]
            else:
                out.append((p + "mlp.gate.weight", g("ffn_gate_inp.weight")))
                for e in range(gate.shape[0]):
                    q = p + f"mlp.experts.{e}."
                    out += [(q + "gate_proj.weight", gate[e]), (q + "up_proj.weight", up[e]),
                            (q + "down_proj.weight", down[e])]
        elif phi:
            out += [(p + "mlp.gate_up_proj.weight", g("ffn_up.weight")), (p + "mlp.down_proj.weight", g("ffn_down.weight"))]
        else:
            out += [(p + "mlp.gate_proj.weight", g("ffn_gate.weight")), (p + "mlp.up_proj.weight", g("ffn_up.weight")),
                    (p + "mlp.down_proj.weight", g("ffn_down.weight"))]
    missing = [n for n, a in out if a is None]
    assert not missing, missing
    write_checkpoint(f"{name}-tiny-f32", out, cfg)


if __name__ == "__main__":
    for name in sys.argv[1:] or CLASSES:
        convert(name)
