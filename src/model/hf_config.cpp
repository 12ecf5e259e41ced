#include "model/hf_config.h"

#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <nlohmann/json.hpp>
#include <numbers>
#include <optional>
#include <string_view>

#include "util/describe.h"
#include "util/error.h"

namespace reprise {
using nlohmann::json;

namespace {

// What transformers' config classes assume for fields a config.json leaves out. Sizes that define
// the weights (hidden_size, ...) have 7B-model defaults there; a config without them cannot match
// its checkpoint, so those stay required here instead.
struct ArchSpec {
  std::string_view hf_class;
  std::string_view model_type;
  Arch arch;
  std::string_view gguf_name;  // HParams::arch_name, as the GGUF of the same model says it
  int default_max_positions;
  int default_head_dim;  // 0: hidden_size / num_attention_heads
  double default_rope_theta;
  double default_rms_eps;
  bool default_tied;
  // The text model's fields sit in "text_config" (a multimodal checkpoint's config), not at the
  // top level.
  bool nested_text = false;
};

constexpr ArchSpec kArchs[] = {
    {"LlamaForCausalLM", "llama", Arch::Llama, "llama", 2048, 0, 1e4, 1e-6, false},
    {"Qwen2ForCausalLM", "qwen2", Arch::Qwen2, "qwen2", 32768, 0, 1e4, 1e-6, false},
    {"Qwen3ForCausalLM", "qwen3", Arch::Qwen3, "qwen3", 32768, 128, 1e4, 1e-6, false},
    {"Qwen3MoeForCausalLM", "qwen3_moe", Arch::Qwen3Moe, "qwen3moe", 32768, 128, 1e4, 1e-6, false},
    // Mixtral is a llama with experts, in GGUF as in reprise.
    {"MixtralForCausalLM", "mixtral", Arch::Llama, "llama", 131072, 0, 1e6, 1e-5, false},
    {"Phi3ForCausalLM", "phi3", Arch::Phi3, "phi3", 4096, 0, 1e4, 1e-5, false},
    {"Gemma2ForCausalLM", "gemma2", Arch::Gemma2, "gemma2", 8192, 256, 1e4, 1e-6, true},
    {"Gemma3ForCausalLM", "gemma3_text", Arch::Gemma3, "gemma3", 131072, 256, 1e6, 1e-6, true},
    // Qwen3.5 dense hybrids: the text-only class, and the image-text one whose text model reprise
    // runs (its vision tower is ignored, as llama.cpp's converter leaves it to the mmproj file).
    {"Qwen3_5ForCausalLM", "qwen3_5_text", Arch::Qwen35, "qwen35", 32768, 256, 1e4, 1e-6, false},
    {"Qwen3_5ForConditionalGeneration", "qwen3_5", Arch::Qwen35, "qwen35", 32768, 256, 1e4, 1e-6,
     false, true},
};

// Relatives of supported architectures that reprise does not run, with what they are, so the
// refusal says why instead of only listing the supported names.
struct Refused {
  std::string_view name;  // an architectures class or a model_type
  std::string_view what;
};
constexpr Refused kRefused[] = {
    {"Qwen3_5MoeForCausalLM", "a Qwen3.5 mixture-of-experts model"},
    {"Qwen3_5MoeForConditionalGeneration", "a Qwen3.5 mixture-of-experts model"},
    {"qwen3_5_moe", "a Qwen3.5 mixture-of-experts model"},
    {"qwen3_5_moe_text", "a Qwen3.5 mixture-of-experts model"},
    {"Qwen3NextForCausalLM", "a Qwen3-Next mixture-of-experts model"},
    {"qwen3_next", "a Qwen3-Next mixture-of-experts model"},
    {"qwen3_5_vision", "a Qwen3.5 vision encoder config (no text model)"},
};

// Typed access to one JSON object; `prefix` qualifies nested names ("rope_scaling.").
class Fields {
 public:
  Fields(const json& obj, const std::string& source, std::string prefix = "")
      : obj_(obj), source_(source), prefix_(std::move(prefix)) {}

  [[noreturn]] void fail(const std::string& what) const { throw FormatError(source_, what); }
  std::string name(std::string_view key) const { return prefix_ + std::string(key); }
  const json& raw() const { return obj_; }

  // transformers treats an explicit null like an absent field (e.g. "head_dim": null).
  const json* find(std::string_view key) const {
    auto it = obj_.find(key);
    return it == obj_.end() || it->is_null() ? nullptr : &*it;
  }

  const json& require(std::string_view key) const {
    auto it = obj_.find(key);
    if (it == obj_.end()) fail("missing field " + name(key));
    return *it;
  }

  // A positive integer that fits an int.
  int positive_int(std::string_view key, const json& v) const {
    if (!v.is_number_integer())
      fail(fmt::format("field {} is {}, expected an integer", name(key), json_kind(v)));
    // Parsed JSON holds non-negative integers as unsigned, but a caller may build signed ones.
    const bool non_positive =
        v.is_number_unsigned() ? v.get<uint64_t>() == 0 : v.get<int64_t>() <= 0;
    if (non_positive)
      fail(fmt::format("field {} is {}, expected a positive integer", name(key), v.dump()));
    if (v.is_number_unsigned() ? v.get<uint64_t>() > INT_MAX : v.get<int64_t>() > INT_MAX)
      fail(fmt::format("field {} is {}, too large", name(key), v.dump()));
    return static_cast<int>(v.get<int64_t>());
  }
  int require_int(std::string_view key) const { return positive_int(key, require(key)); }
  std::optional<int> opt_int(std::string_view key) const {
    const json* v = find(key);
    return v ? std::optional<int>(positive_int(key, *v)) : std::nullopt;
  }

  // A finite positive number; JSON integers count ("rope_theta": 500000).
  double positive_number(std::string_view key, const json& v) const {
    if (!v.is_number())
      fail(fmt::format("field {} is {}, expected a number", name(key), json_kind(v)));
    const double x = v.get<double>();
    if (!(x > 0) || !std::isfinite(x))
      fail(fmt::format("field {} is {}, expected a positive number", name(key), v.dump()));
    return x;
  }
  double require_number(std::string_view key) const { return positive_number(key, require(key)); }
  std::optional<double> opt_number(std::string_view key) const {
    const json* v = find(key);
    return v ? std::optional<double>(positive_number(key, *v)) : std::nullopt;
  }

  std::optional<bool> opt_bool(std::string_view key) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_boolean())
      fail(fmt::format("field {} is {}, expected a boolean", name(key), json_kind(*v)));
    return v->get<bool>();
  }

  std::optional<std::string> opt_string(std::string_view key) const {
    const json* v = find(key);
    if (!v) return std::nullopt;
    if (!v->is_string())
      fail(fmt::format("field {} is {}, expected a string", name(key), json_kind(*v)));
    return v->get<std::string>();
  }

 private:
  const json& obj_;
  const std::string& source_;
  std::string prefix_;
};

const ArchSpec& arch_spec(const Fields& f, const std::string& source) {
  std::string name;
  bool from_class = false;
  if (const json* a = f.find("architectures")) {
    if (!a->is_array())
      f.fail(fmt::format("field architectures is {}, expected an array", json_kind(*a)));
    if (a->empty()) f.fail("field architectures is an empty array");
    if (!(*a)[0].is_string())
      f.fail(fmt::format("field architectures[0] is {}, expected a string", json_kind((*a)[0])));
    name = (*a)[0].get<std::string>();
    from_class = true;
  } else if (auto t = f.opt_string("model_type")) {
    name = *t;
  } else {
    f.fail("missing field architectures (and model_type)");
  }
  for (const auto& spec : kArchs)
    if (name == (from_class ? spec.hf_class : spec.model_type)) return spec;
  for (const auto& r : kRefused)
    if (name == r.name)
      throw Error(fmt::format(
          "{}: {} {} is {}, which reprise does not run (dense Qwen3.5 is: "
          "Qwen3_5ForCausalLM, Qwen3_5ForConditionalGeneration)",
          source, from_class ? "architectures[0]" : "model_type", printable(name), r.what));

  std::string supported;
  for (const auto& spec : kArchs) {
    if (!supported.empty()) supported += ", ";
    supported += from_class ? spec.hf_class : spec.model_type;
  }
  throw Error(fmt::format("{}: unsupported architecture {} (supported: {})", source,
                          printable(name), supported));
}

// A list of `n` positive numbers (rope frequency divisors).
std::vector<float> factor_list(const Fields& s, std::string_view key, int n) {
  const json& v = s.require(key);
  if (!v.is_array())
    s.fail(fmt::format("field {} is {}, expected an array", s.name(key), json_kind(v)));
  if (v.size() != static_cast<size_t>(n))
    s.fail(fmt::format("field {} has {} factors, expected {} (one per rotated pair)", s.name(key),
                       v.size(), n));
  std::vector<float> out;
  for (size_t i = 0; i < v.size(); ++i)
    out.push_back(static_cast<float>(s.positive_number(fmt::format("{}[{}]", key, i), v[i])));
  return out;
}

// Phi-3 long-rope scaling (transformers' "longrope", formerly "su"): frequency divisors for a
// context up to original_max_position_embeddings (short_factor) and beyond it (long_factor), and
// the attention factor transformers derives from the extension max_position_embeddings /
// original unless the config names one. The original context is a top-level field in Phi-3
// configs; rope_parameters (transformers 5) may carry it instead. (The choice between the two
// sets is per session, by its context size: HParams::rope_scaling.)
void read_long_rope(const Fields& f, const Fields& s, HParams& hp) {
  const int pairs = hp.rotary_dims() / 2;
  hp.rope_long_factors = factor_list(s, "long_factor", pairs);
  hp.rope_short_factors = factor_list(s, "short_factor", pairs);
  std::optional<int> orig = s.opt_int("original_max_position_embeddings");
  if (!orig) orig = f.opt_int("original_max_position_embeddings");
  if (!orig) f.fail("missing field original_max_position_embeddings (longrope scaling needs it)");
  hp.rope_orig_ctx = *orig;
  hp.rope_attn_factor = static_cast<float>(
      s.opt_number("attention_factor").value_or(long_rope_attn_factor(hp.n_ctx_train, *orig)));
}

// Reads the rope scaling description (old "rope_scaling", or transformers 5's "rope_parameters",
// which also carries rope_theta) into hp.
// `linear_factor`, when given, accepts linear scaling (Gemma 3) and receives its factor (1 = none).
void read_rope(const Fields& f, const std::string& source, double default_theta, HParams& hp,
               double* linear_factor = nullptr) {
  double theta = default_theta;
  const json* scaling = nullptr;
  std::string scaling_name = "rope_scaling";
  if (const json* params = f.find("rope_parameters")) {
    if (!params->is_object())
      f.fail(fmt::format("field {} is {}, expected an object", f.name("rope_parameters"),
                         json_kind(*params)));
    Fields p(*params, source, f.name("rope_parameters."));
    theta = p.opt_number("rope_theta").value_or(f.opt_number("rope_theta").value_or(theta));
    scaling = params;
    scaling_name = "rope_parameters";
  } else {
    theta = f.opt_number("rope_theta").value_or(theta);
    scaling = f.find("rope_scaling");
    if (scaling && !scaling->is_object())
      f.fail(fmt::format("field {} is {}, expected an object", f.name("rope_scaling"),
                         json_kind(*scaling)));
  }
  hp.rope_theta = static_cast<float>(theta);
  if (!scaling) return;

  Fields s(*scaling, source, f.name(scaling_name + "."));
  // Older configs spell it "type"; transformers copies that to "rope_type".
  auto type = s.opt_string("rope_type");
  if (!type) type = s.opt_string("type");
  if (!type) {
    // rope_parameters may hold only rope_theta; an unlabelled rope_scaling is malformed.
    if (scaling_name == "rope_parameters") return;
    f.fail("missing field " + s.name("rope_type"));
  }
  if (*type == "default") return;
  if (*type == "linear" && linear_factor) {
    *linear_factor = s.require_number("factor");
    return;
  }
  const bool phi3 = hp.arch == Arch::Phi3;
  if (phi3 && (*type == "longrope" || *type == "su")) return read_long_rope(f, s, hp);
  if (*type != "llama3")
    throw Error(fmt::format("{}: rope scaling type {} is not supported (supported: llama3{})",
                            source, printable(*type), phi3 ? ", longrope" : ""));

  const double factor = s.require_number("factor");
  const double low = s.require_number("low_freq_factor");
  const double high = s.require_number("high_freq_factor");
  const int original = s.require_int("original_max_position_embeddings");
  if (!(high > low))
    f.fail(fmt::format("{} ({}) must be larger than {} ({})", s.name("high_freq_factor"), high,
                       s.name("low_freq_factor"), low));
  hp.rope_freq_factors = llama3_rope_freq_factors(hp.head_dim, theta, factor, low, high, original);
}

// Gemma 2/3 (text part) as llama.cpp 0c1e570 runs their GGUF files (see gemma_hparams in
// hparams.cpp), from transformers' config fields and defaults. The (1 + w) of Gemma's RMSNorm is
// the loader's business (HF stores w).
void gemma_config(const Fields& f, const std::string& source, const ArchSpec& spec, HParams& hp) {
  const bool g2 = spec.arch == Arch::Gemma2;
  if (f.find("rope_parameters"))
    throw Error(
        fmt::format("{}: rope_parameters is not supported for {} (a config with "
                    "rope_theta and rope_local_base_freq is)",
                    source, spec.hf_class));
  double linear = 1.0;
  read_rope(f, source, spec.default_rope_theta, hp, g2 ? nullptr : &linear);
  hp.rope_style = RopeStyle::Neox;
  if (g2) hp.tied_output = true;  // llama.cpp's gemma2 uses the embedding as the output head
  hp.embd_scale = std::sqrt(static_cast<float>(hp.n_embd));
  hp.post_norms = true;
  hp.ffn_act = FfnAct::GeluTanh;
  hp.attn_scale =
      static_cast<float>(1.0 / std::sqrt(f.opt_number("query_pre_attn_scalar").value_or(256.0)));
  // transformers: Gemma 2 caps at 50 and 30 unless the config says null; Gemma 3 has no caps
  // unless it names them (and reprise, like llama.cpp, runs no attention cap for it).
  const json* attn_cap = f.find("attn_logit_softcapping");
  const json* final_cap = f.find("final_logit_softcapping");
  const bool absent_attn = !f.raw().contains("attn_logit_softcapping");
  const bool absent_final = !f.raw().contains("final_logit_softcapping");
  if (g2) {
    hp.attn_softcap =
        attn_cap ? static_cast<float>(f.positive_number("attn_logit_softcapping", *attn_cap))
                 : (absent_attn ? 50.0f : 0.0f);
    hp.final_softcap =
        final_cap ? static_cast<float>(f.positive_number("final_logit_softcapping", *final_cap))
                  : (absent_final ? 30.0f : 0.0f);
  } else {
    if (attn_cap)
      throw Error(
          fmt::format("{}: attn_logit_softcapping is not supported for {}", source, spec.hf_class));
    if (final_cap)
      hp.final_softcap =
          static_cast<float>(f.positive_number("final_logit_softcapping", *final_cap));
  }
  const int window = f.opt_int("sliding_window").value_or(4096);
  // Which layers slide: layer_types when given, else every second (Gemma 2) or all but every
  // sliding_window_pattern-th (Gemma 3), as transformers derives layer_types.
  std::vector<bool> slides(static_cast<size_t>(hp.n_layer));
  if (const json* types = f.find("layer_types")) {
    if (!types->is_array() || types->size() != static_cast<size_t>(hp.n_layer))
      f.fail(fmt::format("field layer_types must list {} layers", hp.n_layer));
    for (int l = 0; l < hp.n_layer; ++l) {
      const json& t = (*types)[static_cast<size_t>(l)];
      if (t != "sliding_attention" && t != "full_attention")
        f.fail(
            fmt::format("field layer_types[{}] is {}, expected sliding_attention or "
                        "full_attention",
                        l, t.dump()));
      slides[static_cast<size_t>(l)] = t == "sliding_attention";
    }
  } else {
    const int period = g2 ? 2 : f.opt_int("sliding_window_pattern").value_or(6);
    for (int l = 0; l < hp.n_layer; ++l) slides[static_cast<size_t>(l)] = (l + 1) % period != 0;
  }
  const float local_theta =
      g2 ? hp.rope_theta
         : static_cast<float>(f.opt_number("rope_local_base_freq").value_or(10000.0));
  hp.layers.clear();
  for (int l = 0; l < hp.n_layer; ++l)
    hp.layers.push_back(slides[static_cast<size_t>(l)]
                            ? LayerAttn{window, local_theta, 1.0f}
                            : LayerAttn{0, hp.rope_theta, static_cast<float>(1.0 / linear)});
}

// Qwen3-MoE and Mixtral experts: every block routes each token to num_experts_per_tok experts,
// their softmax weights renormalized to sum 1 (as llama.cpp does for both).
void moe_config(const Fields& f, const std::string& source, const ArchSpec& spec, HParams& hp) {
  if (spec.hf_class == "MixtralForCausalLM") {
    hp.n_expert = f.opt_int("num_local_experts").value_or(8);
    hp.n_expert_used = f.opt_int("num_experts_per_tok").value_or(2);
    hp.n_ff_exp = hp.n_ff;
  } else if (spec.arch == Arch::Qwen3Moe) {
    hp.n_expert = f.require_int("num_experts");
    hp.n_expert_used = f.require_int("num_experts_per_tok");
    hp.n_ff_exp = f.require_int("moe_intermediate_size");
    if (!f.opt_bool("norm_topk_prob").value_or(false))
      throw Error(
          fmt::format("{}: norm_topk_prob false is not supported (reprise renormalizes "
                      "the chosen experts' weights, as llama.cpp does)",
                      source));
    if (f.opt_int("decoder_sparse_step").value_or(1) != 1)
      throw Error(
          fmt::format("{}: decoder_sparse_step other than 1 is not supported (every "
                      "block must be a mixture of experts)",
                      source));
    if (const json* dense = f.find("mlp_only_layers"); dense && !dense->empty())
      throw Error(
          fmt::format("{}: mlp_only_layers is not supported (every block must be a "
                      "mixture of experts)",
                      source));
  } else {
    return;
  }
  if (hp.n_expert_used > hp.n_expert)
    f.fail(fmt::format("num_experts_per_tok {} exceeds the {} experts", hp.n_expert_used,
                       hp.n_expert));
}

// The rotated share of a Qwen3.5 attention head and its M-RoPE sections, from rope_parameters
// (transformers 5) or rope_scaling, else the top level, with the converter's defaults (a quarter
// of the head; sections [11, 11, 10, 0], which llama.cpp's qwen35 loader requires).
void qwen35_rope(const Fields& f, const std::string& source, HParams& hp) {
  const json* rp = f.find("rope_parameters");
  std::string rp_name = "rope_parameters";
  if (!rp) {
    rp = f.find("rope_scaling");
    rp_name = "rope_scaling";
  }
  std::optional<Fields> r;
  if (rp) r.emplace(*rp, source, f.name(rp_name + "."));  // an object: read_rope checked it
  const std::optional<double> own = r ? r->opt_number("partial_rotary_factor") : std::nullopt;
  const double factor = own.value_or(f.opt_number("partial_rotary_factor").value_or(0.25));
  // The converter's int(head_dim * factor).
  hp.rope_dims = static_cast<int>(hp.head_dim * std::min(factor, 1.0));
  if (factor > 1 || hp.rope_dims < 2 || hp.rope_dims % 2 != 0)
    f.fail(
        fmt::format("partial_rotary_factor {} of head_dim {} is not a positive even number of "
                    "dimensions",
                    factor, hp.head_dim));
  hp.rope_sections = {11, 11, 10, 0};
  const json* m = r ? r->find("mrope_section") : nullptr;
  if (!m) return;
  const std::string name = r->name("mrope_section");
  if (!m->is_array() || m->empty() || m->size() > 4)
    f.fail(fmt::format("field {} must list 1 to 4 sections", name));
  hp.rope_sections.assign(4, 0);
  for (size_t i = 0; i < m->size(); ++i) {
    const json& v = (*m)[i];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() > hp.head_dim)
      f.fail(fmt::format("field {}[{}] is {}, expected a section of at most {} pairs", name, i,
                         v.dump(), hp.head_dim));
    hp.rope_sections[i] = static_cast<int>(v.get<int64_t>());
  }
}

// Qwen3.5 dense hybrids (Qwen3_5TextConfig, defaults from transformers), as llama.cpp 0c1e570's
// converter (conversion/qwen.py: Qwen3NextModel, _LinearAttentionVReorderBase) writes them into
// the qwen35 GGUF that reprise runs (qwen35_hparams in hparams.cpp): layer_types, or else every
// full_attention_interval-th layer, are the full-attention layers; the linear_* fields are the
// Gated DeltaNet shapes. How the checkpoint stores what the GGUF stores converted (value heads
// grouped by key head, A_log, (1 + w) norms) is the loader's business.
void qwen35_config(const Fields& f, const std::string& source, HParams& hp) {
  // (A config naming the dense class but describing the MoE model.)
  if (auto t = f.opt_string("model_type"); t && t->starts_with("qwen3_5_moe"))
    throw Error(
        fmt::format("{}: {} {}: a Qwen3.5 mixture-of-experts model is not supported "
                    "(dense Qwen3.5 is)",
                    source, f.name("model_type"), printable(*t)));
  if (const json* e = f.find("num_experts"); e && *e != 0)
    throw Error(
        fmt::format("{}: {} is {}: a Qwen3.5 mixture-of-experts model is not supported "
                    "(dense Qwen3.5 is)",
                    source, f.name("num_experts"), e->dump()));
  if (!f.opt_bool("attn_output_gate").value_or(true))
    throw Error(
        fmt::format("{}: {} false is not supported (reprise runs Qwen3.5's gated "
                    "attention)",
                    source, f.name("attn_output_gate")));
  hp.qk_norm = true;
  hp.attn_out_gate = true;
  hp.rope_style = RopeStyle::Neox;
  qwen35_rope(f, source, hp);

  DeltaNetShape& dn = hp.delta;
  dn.conv_kernel = f.opt_int("linear_conv_kernel_dim").value_or(4);
  dn.head_k_dim = f.opt_int("linear_key_head_dim").value_or(128);
  dn.head_v_dim = f.opt_int("linear_value_head_dim").value_or(128);
  dn.n_k_heads = f.opt_int("linear_num_key_heads").value_or(16);
  dn.n_v_heads = f.opt_int("linear_num_value_heads").value_or(32);
  dn.v_heads_grouped = true;  // HF order: each key head's value heads side by side
  if (dn.head_v_dim != dn.head_k_dim)
    throw Error(fmt::format("{}: {} {} differs from {} {} (unsupported)", source,
                            f.name("linear_value_head_dim"), dn.head_v_dim,
                            f.name("linear_key_head_dim"), dn.head_k_dim));
  if (dn.n_v_heads % dn.n_k_heads != 0)
    f.fail(fmt::format("linear_num_value_heads {} is not a multiple of linear_num_key_heads {}",
                       dn.n_v_heads, dn.n_k_heads));
  if (int64_t{dn.n_v_heads} * dn.head_v_dim > INT_MAX / 4 ||
      int64_t{dn.n_k_heads} * dn.head_k_dim > INT_MAX / 4)
    f.fail("linear attention heads x head dims are too large");

  hp.recurrent.assign(static_cast<size_t>(hp.n_layer), false);
  if (const json* types = f.find("layer_types")) {
    if (!types->is_array() || types->size() != static_cast<size_t>(hp.n_layer))
      f.fail(fmt::format("field {} must list {} layers", f.name("layer_types"), hp.n_layer));
    for (int l = 0; l < hp.n_layer; ++l) {
      const json& t = (*types)[static_cast<size_t>(l)];
      // transformers reads the legacy names mamba and attention as these two.
      const bool linear = t == "linear_attention" || t == "mamba";
      if (!linear && t != "full_attention" && t != "attention")
        f.fail(fmt::format("field {}[{}] is {}, expected linear_attention or full_attention",
                           f.name("layer_types"), l, t.dump()));
      hp.recurrent[static_cast<size_t>(l)] = linear;
    }
  } else {
    const int interval = f.opt_int("full_attention_interval").value_or(4);
    for (int l = 0; l < hp.n_layer; ++l)
      hp.recurrent[static_cast<size_t>(l)] = (l + 1) % interval != 0;
  }
}

// A multimodal config's text model, in "text_config".
const json& text_config(const Fields& top, const ArchSpec& spec) {
  const json* t = top.find("text_config");
  if (!t)
    top.fail(fmt::format("missing field text_config (the text model of a {}, which reprise runs)",
                         spec.hf_class));
  if (!t->is_object())
    top.fail(fmt::format("field text_config is {}, expected an object", json_kind(*t)));
  return *t;
}

}  // namespace

double long_rope_attn_factor(double max_positions, double original_positions) {
  const double extension = max_positions / original_positions;
  if (extension <= 1.0) return 1.0;
  return std::sqrt(1.0 + std::log(extension) / std::log(original_positions));
}

std::vector<float> llama3_rope_freq_factors(int head_dim, double rope_theta, double factor,
                                            double low_freq_factor, double high_freq_factor,
                                            double original_max_positions) {
  // Frequencies whose wavelength fits many times into the original context are kept, those longer
  // than it are slowed down by `factor`, and the band in between blends the two smoothly.
  const double low_freq_wavelen = original_max_positions / low_freq_factor;
  const double high_freq_wavelen = original_max_positions / high_freq_factor;
  std::vector<float> out(static_cast<size_t>(head_dim / 2));
  for (size_t i = 0; i < out.size(); ++i) {
    const double freq = std::pow(rope_theta, -2.0 * static_cast<double>(i) / head_dim);
    const double wavelen = 2 * std::numbers::pi / freq;
    double divisor;
    if (wavelen < high_freq_wavelen) {
      divisor = 1.0;
    } else if (wavelen > low_freq_wavelen) {
      divisor = factor;
    } else {
      const double smooth = (original_max_positions / wavelen - low_freq_factor) /
                            (high_freq_factor - low_freq_factor);
      divisor = 1.0 / ((1.0 - smooth) / factor + smooth);
    }
    out[i] = static_cast<float>(divisor);
  }
  return out;
}

HParams hparams_from_hf_config(const json& config, const std::string& source) {
  if (!config.is_object())
    throw FormatError(source, fmt::format("config is {}, expected an object", json_kind(config)));
  Fields top(config, source);
  const ArchSpec& spec = arch_spec(top, source);
  Fields f(spec.nested_text ? text_config(top, spec) : config, source,
           spec.nested_text ? "text_config." : "");

  HParams hp;
  hp.arch = spec.arch;
  hp.arch_name = std::string(spec.gguf_name);
  hp.n_vocab = f.require_int("vocab_size");
  hp.n_embd = f.require_int("hidden_size");
  hp.n_layer = f.require_int("num_hidden_layers");
  hp.n_head = f.require_int("num_attention_heads");
  hp.n_head_kv = f.opt_int("num_key_value_heads").value_or(hp.n_head);
  // A Qwen3-MoE block has no dense FFN: its intermediate_size is unused.
  hp.n_ff = spec.arch == Arch::Qwen3Moe ? f.opt_int("intermediate_size").value_or(0)
                                        : f.require_int("intermediate_size");
  hp.n_ctx_train = f.opt_int("max_position_embeddings").value_or(spec.default_max_positions);
  hp.rms_eps = static_cast<float>(f.opt_number("rms_norm_eps").value_or(spec.default_rms_eps));
  // A multimodal config may say it at the top level only.
  hp.tied_output = f.opt_bool("tie_word_embeddings")
                       .value_or(top.opt_bool("tie_word_embeddings").value_or(spec.default_tied));
  hp.rope_style = RopeStyle::Neox;

  if (auto hd = f.opt_int("head_dim")) {
    hp.head_dim = *hd;
  } else if (spec.default_head_dim > 0) {
    hp.head_dim = spec.default_head_dim;
  } else {
    if (hp.n_embd % hp.n_head != 0)
      f.fail(
          fmt::format("hidden_size {} is not a multiple of num_attention_heads {} (and there is "
                      "no head_dim)",
                      hp.n_embd, hp.n_head));
    hp.head_dim = hp.n_embd / hp.n_head;
  }
  if (hp.head_dim % 2 != 0)
    f.fail(fmt::format("head_dim {} is odd; rope rotates pairs of dimensions", hp.head_dim));
  if (hp.n_head % hp.n_head_kv != 0)
    f.fail(fmt::format("num_attention_heads {} is not a multiple of num_key_value_heads {}",
                       hp.n_head, hp.n_head_kv));
  if (int64_t{hp.n_head} * hp.head_dim > INT_MAX)
    f.fail(
        fmt::format("num_attention_heads {} x head_dim {} is too large", hp.n_head, hp.head_dim));

  // Qwen2 always has Q/K/V biases; Llama and Qwen3 have them only with attention_bias (which in
  // transformers also puts a bias on o_proj).
  const bool attention_bias = f.opt_bool("attention_bias").value_or(false);
  if (attention_bias && spec.arch == Arch::Qwen35)
    throw Error(fmt::format("{}: {} true is not supported for {}", source, f.name("attention_bias"),
                            spec.hf_class));
  hp.qkv_bias = spec.arch == Arch::Qwen2 || attention_bias;
  hp.qk_norm = spec.arch == Arch::Qwen3 || spec.arch == Arch::Qwen3Moe || spec.arch == Arch::Gemma3;

  // Options these architectures allow but reprise's forward pass does not implement: refuse
  // rather than run a different model.
  const bool gemma = spec.arch == Arch::Gemma2 || spec.arch == Arch::Gemma3;
  // Gemma names its activation hidden_activation (hidden_act is an older spelling).
  const std::string_view act_key =
      gemma && f.find("hidden_activation") ? "hidden_activation" : "hidden_act";
  const std::string_view want_act = gemma ? "gelu_pytorch_tanh" : "silu";
  if (auto act = f.opt_string(act_key); act && *act != want_act)
    throw Error(fmt::format("{}: {} {} is not supported (supported: {})", source, act_key,
                            printable(*act), want_act));
  if (f.opt_bool("mlp_bias").value_or(false))
    throw Error(fmt::format("{}: mlp_bias true is not supported", source));
  // Partial rotary: Phi-3 (Phi-4-mini rotates 96 of 128 dimensions, as transformers counts them:
  // int(head_dim * factor)); Qwen3.5 rotates a part of each head too, which qwen35_config reads.
  if (auto r = f.opt_number("partial_rotary_factor"); r && *r != 1.0 && spec.arch != Arch::Qwen35) {
    if (spec.arch != Arch::Phi3)
      throw Error(
          fmt::format("{}: partial_rotary_factor {} is not supported (partial rope)", source, *r));
    const int dims = static_cast<int>(hp.head_dim * *r);
    if (*r > 1.0 || dims <= 0 || dims % 2 != 0)
      f.fail(
          fmt::format("partial_rotary_factor {} rotates {} of {} head dimensions, not an even "
                      "number of them",
                      *r, dims, hp.head_dim));
    if (dims != hp.head_dim) hp.rope_dims = dims;
  }

  if (gemma) {
    gemma_config(f, source, spec, hp);
  } else {
    read_rope(f, source, spec.default_rope_theta, hp);
    // A window reprise would not apply (Phi-3's is ignored, as llama.cpp 0c1e570 ignores it
    // in Phi-3 GGUF files; Qwen's applies only with use_sliding_window).
    const bool window =
        spec.hf_class == "MixtralForCausalLM"
            ? f.find("sliding_window") != nullptr
            : spec.arch == Arch::Qwen3Moe && f.opt_bool("use_sliding_window").value_or(false);
    if (window)
      throw Error(fmt::format("{}: sliding_window is not supported for {}", source, spec.hf_class));
  }
  moe_config(f, source, spec, hp);
  if (spec.arch == Arch::Qwen35) qwen35_config(f, source, hp);
  return hp;
}

}  // namespace reprise
