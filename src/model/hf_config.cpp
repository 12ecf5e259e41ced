#include "model/hf_config.h"

#include <fmt/format.h>

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
  int default_max_positions;
  int default_head_dim;  // 0: hidden_size / num_attention_heads
};

constexpr ArchSpec kArchs[] = {
    {"LlamaForCausalLM", "llama", Arch::Llama, 2048, 0},
    {"Qwen2ForCausalLM", "qwen2", Arch::Qwen2, 32768, 0},
    {"Qwen3ForCausalLM", "qwen3", Arch::Qwen3, 32768, 128},
};
constexpr double kDefaultRopeTheta = 10000.0;
constexpr double kDefaultRmsEps = 1e-6;

// Typed access to one JSON object; `prefix` qualifies nested names ("rope_scaling.").
class Fields {
 public:
  Fields(const json& obj, const std::string& source, std::string prefix = "")
      : obj_(obj), source_(source), prefix_(std::move(prefix)) {}

  [[noreturn]] void fail(const std::string& what) const { throw FormatError(source_, what); }
  std::string name(std::string_view key) const { return prefix_ + std::string(key); }

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

  std::string supported;
  for (const auto& spec : kArchs) {
    if (!supported.empty()) supported += ", ";
    supported += from_class ? spec.hf_class : spec.model_type;
  }
  throw Error(fmt::format("{}: unsupported architecture {} (supported: {})", source,
                          printable(name), supported));
}

// Reads the rope scaling description (old "rope_scaling", or transformers 5's "rope_parameters",
// which also carries rope_theta) into hp.
void read_rope(const Fields& f, const std::string& source, HParams& hp) {
  double theta = kDefaultRopeTheta;
  const json* scaling = nullptr;
  std::string scaling_name = "rope_scaling";
  if (const json* params = f.find("rope_parameters")) {
    if (!params->is_object())
      f.fail(fmt::format("field rope_parameters is {}, expected an object", json_kind(*params)));
    Fields p(*params, source, "rope_parameters.");
    theta = p.opt_number("rope_theta").value_or(f.opt_number("rope_theta").value_or(theta));
    scaling = params;
    scaling_name = "rope_parameters";
  } else {
    theta = f.opt_number("rope_theta").value_or(theta);
    scaling = f.find("rope_scaling");
    if (scaling && !scaling->is_object())
      f.fail(fmt::format("field rope_scaling is {}, expected an object", json_kind(*scaling)));
  }
  hp.rope_theta = static_cast<float>(theta);
  if (!scaling) return;

  Fields s(*scaling, source, scaling_name + ".");
  // Older configs spell it "type"; transformers copies that to "rope_type".
  auto type = s.opt_string("rope_type");
  if (!type) type = s.opt_string("type");
  if (!type) {
    // rope_parameters may hold only rope_theta; an unlabelled rope_scaling is malformed.
    if (scaling_name == "rope_parameters") return;
    f.fail("missing field rope_scaling.rope_type");
  }
  if (*type == "default") return;
  if (*type != "llama3")
    throw Error(fmt::format("{}: rope scaling type {} is not supported (supported: llama3)", source,
                            printable(*type)));

  const double factor = s.require_number("factor");
  const double low = s.require_number("low_freq_factor");
  const double high = s.require_number("high_freq_factor");
  const int original = s.require_int("original_max_position_embeddings");
  if (!(high > low))
    f.fail(fmt::format("{} ({}) must be larger than {} ({})", s.name("high_freq_factor"), high,
                       s.name("low_freq_factor"), low));
  hp.rope_freq_factors = llama3_rope_freq_factors(hp.head_dim, theta, factor, low, high, original);
}

}  // namespace

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
  Fields f(config, source);
  const ArchSpec& spec = arch_spec(f, source);

  HParams hp;
  hp.arch = spec.arch;
  hp.arch_name = std::string(spec.model_type);
  hp.n_vocab = f.require_int("vocab_size");
  hp.n_embd = f.require_int("hidden_size");
  hp.n_layer = f.require_int("num_hidden_layers");
  hp.n_head = f.require_int("num_attention_heads");
  hp.n_head_kv = f.opt_int("num_key_value_heads").value_or(hp.n_head);
  hp.n_ff = f.require_int("intermediate_size");
  hp.n_ctx_train = f.opt_int("max_position_embeddings").value_or(spec.default_max_positions);
  hp.rms_eps = static_cast<float>(f.opt_number("rms_norm_eps").value_or(kDefaultRmsEps));
  hp.tied_output = f.opt_bool("tie_word_embeddings").value_or(false);
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
  hp.qkv_bias = spec.arch == Arch::Qwen2 || attention_bias;
  hp.qk_norm = spec.arch == Arch::Qwen3;

  // Options these architectures allow but reprise's forward pass does not implement: refuse
  // rather than run a different model.
  if (auto act = f.opt_string("hidden_act"); act && *act != "silu")
    throw Error(fmt::format("{}: hidden_act {} is not supported (supported: silu)", source,
                            printable(*act)));
  if (f.opt_bool("mlp_bias").value_or(false))
    throw Error(fmt::format("{}: mlp_bias true is not supported", source));

  read_rope(f, source, hp);
  return hp;
}

}  // namespace reprise
