#include "model/hparams.h"

#include <fmt/format.h>

#include "format/gguf.h"
#include "util/error.h"

namespace reprise {

Arch parse_arch(const std::string& name, const std::string& source) {
  if (name == "llama") return Arch::Llama;
  if (name == "qwen2") return Arch::Qwen2;
  if (name == "qwen3") return Arch::Qwen3;
  throw FormatError(source, fmt::format("unknown architecture '{}' (supported: llama, qwen2, qwen3)",
                                        name));
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

}  // namespace

HParams hparams_from_gguf(const GgufFile& g) {
  HParams hp;
  hp.arch_name = g.require_string("general.architecture");
  hp.arch = parse_arch(hp.arch_name, g.path());
  const std::string a = hp.arch_name + ".";

  hp.n_embd = uniform_int(g, a + "embedding_length");
  hp.n_layer = uniform_int(g, a + "block_count");
  hp.n_ff = uniform_int(g, a + "feed_forward_length");
  hp.n_head = uniform_int(g, a + "attention.head_count");
  hp.n_head_kv = g.find(a + "attention.head_count_kv") ? uniform_int(g, a + "attention.head_count_kv")
                                                        : hp.n_head;
  hp.head_dim = g.find(a + "attention.key_length") ? uniform_int(g, a + "attention.key_length")
                                                   : hp.n_embd / hp.n_head;
  if (auto ctx = g.get_int(a + "context_length")) hp.n_ctx_train = positive_int(g, a + "context_length", *ctx);
  hp.rms_eps = static_cast<float>(
      g.get_float(a + "attention.layer_norm_rms_epsilon").value_or(hp.arch == Arch::Llama ? 1e-5 : 1e-6));
  hp.rope_theta = static_cast<float>(
      g.get_float(a + "rope.freq_base").value_or(hp.arch == Arch::Llama ? 1e4 : 1e6));
  hp.rope_style = hp.arch == Arch::Llama ? RopeStyle::Interleaved : RopeStyle::Neox;
  hp.qkv_bias = hp.arch == Arch::Qwen2;
  hp.qk_norm = hp.arch == Arch::Qwen3;

  if (auto v = g.find(a + "attention.value_length"); v && g.require_int(a + "attention.value_length") != hp.head_dim)
    throw FormatError(g.path(), "attention.value_length differs from key_length (unsupported)");
  if (hp.n_head % hp.n_head_kv != 0)
    throw FormatError(g.path(), fmt::format("{}attention.head_count {} is not a multiple of "
                                            "head_count_kv {}",
                                            a, hp.n_head, hp.n_head_kv));
  if (hp.head_dim % 2 != 0)
    throw FormatError(g.path(), fmt::format("head dimension {} is odd; rope needs pairs", hp.head_dim));
  if (auto dims = g.get_int(a + "rope.dimension_count"); dims && *dims != hp.head_dim)
    throw FormatError(g.path(), fmt::format("{}rope.dimension_count {} != head dimension {} "
                                            "(partial rope is unsupported)",
                                            a, *dims, hp.head_dim));
  if (const GgufValue* s = g.find(a + "rope.scaling.type"); s && s->str != "none" && s->str != "")
    throw FormatError(g.path(), fmt::format("{}rope.scaling.type '{}' is unsupported", a, s->str));

  // The vocabulary size comes from the embedding matrix; metadata may be absent.
  const TensorView* emb = g.tensor("token_embd.weight");
  if (!emb) throw FormatError(g.path(), "missing tensor token_embd.weight");
  hp.n_vocab = static_cast<int>(emb->shape.size() == 2 ? emb->shape[0] : 0);
  return hp;
}

}  // namespace reprise
