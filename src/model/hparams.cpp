#include "model/hparams.h"

#include <fmt/format.h>

#include <cmath>

#include "format/gguf.h"
#include "util/error.h"

namespace reprise {

Arch parse_arch(const std::string& name, const std::string& source) {
  if (name == "llama") return Arch::Llama;
  if (name == "qwen2") return Arch::Qwen2;
  if (name == "qwen3") return Arch::Qwen3;
  if (name == "qwen3moe") return Arch::Qwen3Moe;
  if (name == "phi3") return Arch::Phi3;
  if (name == "gemma2") return Arch::Gemma2;
  if (name == "gemma3") return Arch::Gemma3;
  if (name == "smollm3") return Arch::SmolLM3;
  if (name == "qwen35") return Arch::Qwen35;
  throw FormatError(source, fmt::format("unknown architecture '{}' (supported: llama, qwen2, "
                                        "qwen3, qwen3moe, phi3, gemma2, gemma3, smollm3, qwen35)",
                                        name));
}

RopeScaling HParams::rope_scaling(int n_ctx) const {
  RopeScaling r;
  r.attn_factor = rope_attn_factor;
  if (!rope_freq_factors.empty()) {
    r.kind = RopeScaling::Kind::Llama3;
    r.factors = rope_freq_factors;
  } else if (n_ctx > long_rope_orig_ctx()) {
    if (!rope_long_factors.empty()) r.kind = RopeScaling::Kind::LongRopeLong;
    r.factors = rope_long_factors;
  } else {
    if (!rope_short_factors.empty()) r.kind = RopeScaling::Kind::LongRopeShort;
    r.factors = rope_short_factors;
  }
  return r;
}

bool HParams::rope_pair_turns(int pair) const {
  if (rope_sections.size() != 4) return true;
  const int t = rope_sections[0], h = rope_sections[1], w = rope_sections[2];
  const int total = t + h + w + rope_sections[3];
  if (total <= 0) return true;
  // ggml_mrope_cache_init's interleaved (imrope) choice of section for a pair.
  const int sector = pair % total;
  if (sector % 3 == 1 && sector < 3 * h) return true;
  if (sector % 3 == 2 && sector < 3 * w) return true;
  if (sector % 3 == 0 && sector < 3 * t) return true;
  return false;  // section e: position 0 for text tokens
}

namespace {

int positive_int(const GgufFile& g, const std::string& key, int64_t v) {
  if (v <= 0 || v > (int64_t{1} << 30))
    throw FormatError(g.path(), fmt::format("metadata {} is {}, expected a positive size", key, v));
  return static_cast<int>(v);
}

// Some files store per-layer values as arrays; reprise needs them uniform across layers.
int uniform_int(const GgufFile& g, const std::string& key) {
  const GgufValue* v = g.find(key);
  if (!v) throw FormatError(g.path(), fmt::format("missing required metadata {}", key));
  if (v->is_array()) {
    if (v->ints.empty()) throw FormatError(g.path(), fmt::format("metadata {} is empty", key));
    for (int64_t x : v->ints)
      if (x != v->ints[0])
        throw FormatError(g.path(), fmt::format("metadata {} varies per layer (unsupported)", key));
    return positive_int(g, key, v->ints[0]);
  }
  return positive_int(g, key, g.require_int(key));
}

// Which layers use the sliding window, as llama.cpp 0c1e570 reads it (llama_model_base::
// load_swa_pattern, llama_hparams::set_swa_pattern): `attention.sliding_window_pattern` is
// either one bool per layer or a period n, where layer l slides unless l % n == n - 1 (n = 0:
// every layer slides). Without the key, the architecture's period: 2 for Gemma 2 (even layers
// slide), 6 for Gemma 3 (five sliding, then one global).
std::vector<bool> swa_layers(const GgufFile& g, const std::string& a, int n_layer,
                             int default_period) {
  const std::string key = a + "attention.sliding_window_pattern";
  std::vector<bool> out(static_cast<size_t>(n_layer));
  const GgufValue* v = g.find(key);
  if (v && v->is_array()) {
    if (v->ints.size() != static_cast<size_t>(n_layer))
      throw FormatError(g.path(), fmt::format("metadata {} has {} entries for {} layers", key,
                                              v->array_size(), n_layer));
    for (int l = 0; l < n_layer; ++l) out[static_cast<size_t>(l)] = v->ints[l] != 0;
    return out;
  }
  int64_t period = default_period;
  if (v) period = g.require_int(key);
  if (period < 0 || period > (int64_t{1} << 30))
    throw FormatError(g.path(),
                      fmt::format("metadata {} is {}, expected a period >= 0", key, period));
  for (int l = 0; l < n_layer; ++l)
    out[static_cast<size_t>(l)] = period == 0 || l % period < period - 1;
  return out;
}

float positive_float(const GgufFile& g, const std::string& key, double fallback) {
  const double v = g.get_float(key).value_or(fallback);
  if (!(v > 0) || !std::isfinite(v))
    throw FormatError(g.path(),
                      fmt::format("metadata {} is {}, expected a positive number", key, v));
  return static_cast<float>(v);
}

// Gemma 2 and 3 (text part), as llama.cpp 0c1e570 runs them (src/models/gemma2.cpp, gemma3.cpp).
// The GGUF converter stores the (1 + w) of Gemma's RMSNorm already added, so norms are plain.
void gemma_hparams(const GgufFile& g, const std::string& a, HParams& hp) {
  const bool g2 = hp.arch == Arch::Gemma2;
  hp.rope_style = RopeStyle::Neox;
  // llama.cpp's gemma2 uses the embedding as the output head even when output.weight exists.
  hp.tied_output = g2;
  hp.embd_scale = std::sqrt(static_cast<float>(hp.n_embd));
  hp.post_norms = true;
  hp.ffn_act = FfnAct::GeluTanh;
  hp.qk_norm = !g2;
  // llama.cpp derives the 27B models' query_pre_attn_scalar (n_embd / n_head) from the layer
  // count; every other size scales by 1 / sqrt(head_dim).
  const bool is_27b = hp.n_layer == (g2 ? 46 : 62);
  hp.attn_scale =
      1.0f / std::sqrt(static_cast<float>(is_27b ? hp.n_embd / hp.n_head : hp.head_dim));
  if (g2) {
    hp.attn_softcap = positive_float(g, a + "attn_logit_softcapping", 50.0);
    hp.final_softcap = positive_float(g, a + "final_logit_softcapping", 30.0);
  } else if (g.find(a + "final_logit_softcapping")) {
    hp.final_softcap = positive_float(g, a + "final_logit_softcapping", 0.0);
  }
  // Gemma 2 slides with a 4096 window unless told otherwise; Gemma 3 only when the key says so.
  int window = 0;
  if (g.find(a + "attention.sliding_window"))
    window = positive_int(g, a + "attention.sliding_window",
                          g.require_int(a + "attention.sliding_window"));
  else if (g2)
    window = 4096;
  // Linear rope scaling (Gemma 3 4B and larger) applies to the global layers only.
  float global_scale = 1.0f;
  if (const GgufValue* s = g.find(a + "rope.scaling.type"); s && s->str == "linear") {
    const double f = g.get_float(a + "rope.scaling.factor").value_or(0.0);
    if (f < 0 || !std::isfinite(f))
      throw FormatError(g.path(), fmt::format("metadata {}rope.scaling.factor is {}", a, f));
    if (f > 0) global_scale = static_cast<float>(1.0 / f);
  }
  const float swa_theta = g2 ? positive_float(g, a + "rope.freq_base_swa", hp.rope_theta)
                             : positive_float(g, a + "rope.freq_base_swa", 10000.0);
  const std::vector<bool> swa =
      window > 0 ? swa_layers(g, a, hp.n_layer, g2 ? 2 : 6) : std::vector<bool>(hp.n_layer, false);
  hp.layers.clear();
  for (int l = 0; l < hp.n_layer; ++l)
    hp.layers.push_back(swa[static_cast<size_t>(l)] ? LayerAttn{window, swa_theta, 1.0f}
                                                    : LayerAttn{0, hp.rope_theta, global_scale});
}

// Mixture-of-experts blocks, as llama.cpp 0c1e570 runs them for `qwen3moe` (src/models/
// qwen3moe.cpp) and Mixtral-style `llama` files (src/models/llama.cpp, with expert_count set):
// softmax over the router logits, the top expert_used_count experts, their weights renormalized
// to sum 1 (llama.cpp does so for both architectures, whatever the HF config's norm_topk_prob
// said). Expert width: `expert_feed_forward_length` for qwen3moe, `feed_forward_length` for llama.
// llama.cpp reads no gating-function or weight-scale key for these two architectures, so neither
// does reprise; shared experts and expert groups it would not run either, so they are refused.
void moe_hparams(const GgufFile& g, const std::string& a, HParams& hp) {
  // Dense llama files may say 0 experts or nothing; a qwen3moe file must name its experts.
  const int64_t n_expert = hp.arch == Arch::Qwen3Moe || g.find(a + "expert_count")
                               ? g.require_int(a + "expert_count")
                               : 0;
  if (n_expert == 0 && hp.arch != Arch::Qwen3Moe) return;
  hp.n_expert = positive_int(g, a + "expert_count", n_expert);
  hp.n_expert_used = uniform_int(g, a + "expert_used_count");
  if (hp.n_expert_used > hp.n_expert)
    throw FormatError(g.path(), fmt::format("metadata {}expert_used_count {} exceeds "
                                            "expert_count {}",
                                            a, hp.n_expert_used, hp.n_expert));
  for (const char* k : {"expert_shared_count", "expert_shared_feed_forward_length"})
    if (auto v = g.get_int(a + k); v && *v != 0)
      throw FormatError(g.path(), fmt::format("metadata {}{} is {}: shared experts are "
                                              "unsupported",
                                              a, k, *v));
  if (auto v = g.get_int(a + "expert_group_count"); v && *v > 1)
    throw FormatError(g.path(), fmt::format("metadata {}expert_group_count is {}: expert groups "
                                            "are unsupported",
                                            a, *v));
  if (hp.arch != Arch::Qwen3Moe)
    hp.n_ff_exp = hp.n_ff;
  else if (g.find(a + "expert_feed_forward_length"))
    hp.n_ff_exp = uniform_int(g, a + "expert_feed_forward_length");
  else if (hp.n_ff / hp.n_expert_used > 0)  // llama.cpp's fallback
    hp.n_ff_exp = hp.n_ff / hp.n_expert_used;
  else
    throw FormatError(g.path(),
                      fmt::format("missing required metadata {}expert_feed_forward_length", a));
}

// Mistral-family `llama` files: `attention.sliding_window` W > 0 makes every layer attend to its
// last W positions (the query's own included), as Hugging Face's Mistral does. llama.cpp 0c1e570
// ignores the key for `llama` (llama_model_llama::load_arch_hparams in src/models/llama.cpp never
// reads it, and its graph builds a plain causal mask), so its logits differ from reprise's once a
// prompt is longer than the window; tests/data/golden/make_mistral_goldens.py checks reprise
// against a reference written from the Mistral definition instead.
void mistral_window(const GgufFile& g, const std::string& a, HParams& hp) {
  const std::string key = a + "attention.sliding_window";
  const GgufValue* v = g.find(key);
  if (!v) return;
  if (v->is_array())
    throw FormatError(g.path(), fmt::format("metadata {} varies per layer (unsupported)", key));
  const int64_t w = g.require_int(key);
  if (w == 0) return;  // converters write 0 for Mistral files without a window
  const int window = positive_int(g, key, w);
  // The pattern key has no meaning for llama files (llama.cpp does not read it either); which
  // layers it would exempt is guesswork, so such files are refused.
  if (g.find(a + "attention.sliding_window_pattern"))
    throw FormatError(g.path(), fmt::format("metadata {}attention.sliding_window_pattern is "
                                            "unsupported for {}",
                                            a, hp.arch_name));
  hp.layers.assign(static_cast<size_t>(hp.n_layer), LayerAttn{window, hp.rope_theta, 1.0f});
}

// SmolLM3: a Llama block whose every fourth layer (3, 7, 11, ...) runs attention without rope
// ("NoPE"). llama.cpp 0c1e570 reads no key for it: llama_model_smollm3::load_arch_hparams sets
// n_no_rope_layer_step = 4 and its graph skips rope where (il + 1) % 4 == 0 (src/models/
// smollm3.cpp); the converter writes none of the HF config's no_rope_layers. The flag belongs to
// the physical layer, so a path keeps it wherever the layer runs.
void smollm3_layers(HParams& hp) {
  hp.layers.clear();
  for (int l = 0; l < hp.n_layer; ++l) {
    LayerAttn attn{0, hp.rope_theta, 1.0f};
    attn.rope = smollm3_block_has_rope(l);
    hp.layers.push_back(attn);
  }
}

// Qwen3.5 dense hybrids, as llama.cpp 0c1e570 reads them (src/models/qwen35.cpp,
// llama_model_qwen35::load_arch_hparams): `attention.recurrent_layers` (one flag per layer) says
// which layers are Gated DeltaNet ones; without it, every layer but each full_attention_interval-th
// (default 4) is. The ssm.* keys give the DeltaNet shapes: group_count key heads and
// time_step_rank value heads, state_size per key head, inner_size / time_step_rank per value head,
// conv_kernel taps. Attention layers gate their output, normalise q and k per head and rotate
// only rope.dimension_count leading dimensions of a head (neox pairs; llama.cpp's interleaved
// M-RoPE sections all see the same position for text, so they reduce to that). MTP layers
// (nextn_predict_layers, stored after the trunk) are not run, as llama.cpp's main pass does not.
void qwen35_hparams(const GgufFile& g, const std::string& a, HParams& hp) {
  hp.qk_norm = true;
  hp.attn_out_gate = true;
  hp.rope_style = RopeStyle::Neox;
  if (auto v = g.get_int(a + "nextn_predict_layers"); v && *v > 0) {
    if (*v >= hp.n_layer)
      throw FormatError(g.path(), fmt::format("metadata {}nextn_predict_layers {} leaves no layers "
                                              "of {}",
                                              a, *v, hp.n_layer));
    hp.n_layer -= static_cast<int>(*v);
  }
  hp.rope_dims =
      g.find(a + "rope.dimension_count")
          ? positive_int(g, a + "rope.dimension_count", g.require_int(a + "rope.dimension_count"))
          : hp.head_dim;
  if (hp.rope_dims > hp.head_dim || hp.rope_dims % 2 != 0)
    throw FormatError(g.path(),
                      fmt::format("metadata {}rope.dimension_count {} does not fit a head "
                                  "of {} in pairs",
                                  a, hp.rope_dims, hp.head_dim));
  if (const GgufValue* v = g.find(a + "rope.dimension_sections"); v && v->is_array()) {
    if (v->ints.size() < 4)
      throw FormatError(g.path(), fmt::format("metadata {}rope.dimension_sections has {} entries, "
                                              "expected 4",
                                              a, v->array_size()));
    for (int i = 0; i < 4; ++i) {
      if (v->ints[i] < 0 || v->ints[i] > hp.head_dim)
        throw FormatError(g.path(), fmt::format("metadata {}rope.dimension_sections[{}] is {}", a,
                                                i, v->ints[i]));
      hp.rope_sections.push_back(static_cast<int>(v->ints[i]));
    }
  }
  DeltaNetShape& dn = hp.delta;
  dn.conv_kernel = positive_int(g, a + "ssm.conv_kernel", g.require_int(a + "ssm.conv_kernel"));
  dn.head_k_dim = positive_int(g, a + "ssm.state_size", g.require_int(a + "ssm.state_size"));
  dn.n_k_heads = positive_int(g, a + "ssm.group_count", g.require_int(a + "ssm.group_count"));
  dn.n_v_heads = positive_int(g, a + "ssm.time_step_rank", g.require_int(a + "ssm.time_step_rank"));
  const int inner = positive_int(g, a + "ssm.inner_size", g.require_int(a + "ssm.inner_size"));
  dn.head_v_dim = inner / dn.n_v_heads;
  if (dn.head_v_dim * dn.n_v_heads != inner || dn.head_v_dim != dn.head_k_dim)
    throw FormatError(g.path(), fmt::format("metadata {}ssm.inner_size {} is not time_step_rank {} "
                                            "value heads of state_size {}",
                                            a, inner, dn.n_v_heads, dn.head_k_dim));
  if (dn.n_v_heads % dn.n_k_heads != 0)
    throw FormatError(g.path(), fmt::format("metadata {}ssm.time_step_rank {} is not a multiple of "
                                            "ssm.group_count {}",
                                            a, dn.n_v_heads, dn.n_k_heads));
  hp.recurrent.assign(static_cast<size_t>(hp.n_layer), false);
  const std::string key = a + "attention.recurrent_layers";
  if (const GgufValue* v = g.find(key); v && v->is_array()) {
    if (v->ints.size() < static_cast<size_t>(hp.n_layer))
      throw FormatError(g.path(), fmt::format("metadata {} has {} entries for {} layers", key,
                                              v->array_size(), hp.n_layer));
    for (int l = 0; l < hp.n_layer; ++l) hp.recurrent[static_cast<size_t>(l)] = v->ints[l] != 0;
  } else if (v) {
    for (int l = 0; l < hp.n_layer; ++l) hp.recurrent[static_cast<size_t>(l)] = v->i != 0;
  } else {
    const int64_t interval = g.get_int(a + "full_attention_interval").value_or(4);
    if (interval <= 0 || interval > (int64_t{1} << 30))
      throw FormatError(g.path(),
                        fmt::format("metadata {}full_attention_interval is {}, expected a "
                                    "positive period",
                                    a, interval));
    for (int l = 0; l < hp.n_layer; ++l)
      hp.recurrent[static_cast<size_t>(l)] = (l + 1) % interval != 0;
  }
}

// The scalar half of long-rope scaling, as llama.cpp 0c1e570 reads it for every architecture
// (llama_model_base::load_hparams): the original context the long factors are chosen beyond
// (default: the training context) and the attention factor rope multiplies cos and sin by. The
// factor tensors themselves are read with the weights (Model::load_gguf).
void long_rope_hparams(const GgufFile& g, const std::string& a, HParams& hp) {
  if (auto orig = g.get_int(a + "rope.scaling.original_context_length"); orig && *orig != 0)
    hp.rope_orig_ctx = positive_int(g, a + "rope.scaling.original_context_length", *orig);
  hp.rope_attn_factor = positive_float(g, a + "rope.scaling.attn_factor", 1.0);
}

}  // namespace

bool smollm3_block_has_rope(int layer) {
  constexpr int kNoRopeStep = 4;
  return (layer + 1) % kNoRopeStep != 0;
}

HParams hparams_from_gguf(const GgufFile& g) {
  HParams hp;
  hp.arch_name = g.require_string("general.architecture");
  hp.arch = parse_arch(hp.arch_name, g.path());
  const std::string a = hp.arch_name + ".";

  hp.n_embd = uniform_int(g, a + "embedding_length");
  hp.n_layer = uniform_int(g, a + "block_count");
  // A qwen3moe block has no dense FFN; the key (the HF config's unused intermediate_size) may
  // be absent.
  hp.n_ff = hp.arch == Arch::Qwen3Moe && !g.find(a + "feed_forward_length")
                ? 0
                : uniform_int(g, a + "feed_forward_length");
  hp.n_head = uniform_int(g, a + "attention.head_count");
  hp.n_head_kv = g.find(a + "attention.head_count_kv")
                     ? uniform_int(g, a + "attention.head_count_kv")
                     : hp.n_head;
  hp.head_dim = g.find(a + "attention.key_length") ? uniform_int(g, a + "attention.key_length")
                                                   : hp.n_embd / hp.n_head;
  if (auto ctx = g.get_int(a + "context_length"))
    hp.n_ctx_train = positive_int(g, a + "context_length", *ctx);
  const bool gemma = hp.arch == Arch::Gemma2 || hp.arch == Arch::Gemma3;
  hp.rms_eps = static_cast<float>(
      g.get_float(a + "attention.layer_norm_rms_epsilon")
          .value_or(hp.arch == Arch::Llama || hp.arch == Arch::Phi3 ? 1e-5 : 1e-6));
  // llama.cpp's default rope base is 1e4 for every architecture; Qwen files always set it.
  hp.rope_theta = static_cast<float>(
      g.get_float(a + "rope.freq_base")
          .value_or(hp.arch == Arch::Qwen2 || hp.arch == Arch::Qwen3 || hp.arch == Arch::Qwen3Moe
                        ? 1e6
                        : 1e4));
  // SmolLM3's converter permutes Q and K as Llama's does (llama.cpp: LLAMA_ROPE_TYPE_NORM).
  hp.rope_style =
      hp.arch == Arch::Llama || hp.arch == Arch::SmolLM3 ? RopeStyle::Interleaved : RopeStyle::Neox;
  hp.qkv_bias = hp.arch == Arch::Qwen2;
  hp.qk_norm = hp.arch == Arch::Qwen3 || hp.arch == Arch::Qwen3Moe;
  moe_hparams(g, a, hp);

  if (auto v = g.find(a + "attention.value_length");
      v && g.require_int(a + "attention.value_length") != hp.head_dim)
    throw FormatError(g.path(), "attention.value_length differs from key_length (unsupported)");
  if (hp.n_head % hp.n_head_kv != 0)
    throw FormatError(g.path(), fmt::format("{}attention.head_count {} is not a multiple of "
                                            "head_count_kv {}",
                                            a, hp.n_head, hp.n_head_kv));
  if (hp.head_dim % 2 != 0)
    throw FormatError(g.path(),
                      fmt::format("head dimension {} is odd; rope needs pairs", hp.head_dim));
  // Partial rotary (Phi-4-mini rotates 96 of 128): Qwen3.5 reads it below, Phi-3 here.
  if (auto dims = g.get_int(a + "rope.dimension_count");
      dims && *dims != hp.head_dim && hp.arch != Arch::Qwen35) {
    if (hp.arch != Arch::Phi3)
      throw FormatError(g.path(), fmt::format("{}rope.dimension_count {} != head dimension {} "
                                              "(partial rope is unsupported)",
                                              a, *dims, hp.head_dim));
    if (*dims <= 0 || *dims > hp.head_dim || *dims % 2 != 0)
      throw FormatError(g.path(), fmt::format("metadata {}rope.dimension_count {} does not fit "
                                              "a head of {} in pairs",
                                              a, *dims, hp.head_dim));
    hp.rope_dims = static_cast<int>(*dims);
  }
  long_rope_hparams(g, a, hp);
  if (const GgufValue* s = g.find(a + "rope.scaling.type");
      s && s->str != "none" && s->str != "" && !(gemma && s->str == "linear"))
    throw FormatError(g.path(), fmt::format("{}rope.scaling.type '{}' is unsupported", a, s->str));
  if (hp.arch == Arch::Qwen35) qwen35_hparams(g, a, hp);
  if (gemma) {
    gemma_hparams(g, a, hp);
  } else {
    if (hp.arch == Arch::Llama) mistral_window(g, a, hp);
    if (hp.arch == Arch::SmolLM3) smollm3_layers(hp);
    // Keys that change what a Llama/Qwen layer computes, which reprise does not run yet.
    // (A window of 0, which converters write for Mistral files without one, changes nothing.)
    // Llama reads its window above. Phi-3 files name a window that llama.cpp 0c1e570 ignores
    // (llama_model_phi3::load_arch_hparams: "Phi SWA is currently disabled"), so reprise
    // ignores it too.
    const bool own_window = hp.arch == Arch::Llama || hp.arch == Arch::Phi3;
    for (const std::string k :
         {"attention.sliding_window", "attn_logit_softcapping", "final_logit_softcapping"}) {
      if (own_window && k == "attention.sliding_window") continue;
      if (const GgufValue* v = g.find(a + k); v && (v->is_array() || v->i != 0 || v->f != 0))
        throw FormatError(g.path(),
                          fmt::format("metadata {}{} is unsupported for {}", a, k, hp.arch_name));
    }
  }

  // The vocabulary size comes from the embedding matrix; metadata may be absent.
  const TensorView* emb = g.tensor("token_embd.weight");
  if (!emb) throw FormatError(g.path(), "missing tensor token_embd.weight");
  hp.n_vocab = static_cast<int>(emb->shape.size() == 2 ? emb->shape[0] : 0);
  return hp;
}

}  // namespace reprise
