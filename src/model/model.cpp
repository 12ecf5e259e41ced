#include "model/model.h"

#include <fmt/format.h>

#include <cmath>
#include <functional>

#include "format/gguf.h"
#include "format/safetensors.h"
#include "kernels/quant.h"
#include "model/hf_config.h"
#include "model/hf_tokenizer.h"
#include "model/vocab.h"
#include "util/error.h"

namespace reprise {
namespace {

// How one file family names the tensors of a llama-style model.
struct TensorNames {
  std::string token_embd, output_norm, output;
  std::function<std::string(int layer, const char* role)> block;
  // Expert e's matrix (role ffn_gate_exps/ffn_up_exps/ffn_down_exps) stored as its own 2-D
  // tensor (Hugging Face); empty when the experts are stacked in one 3-D tensor per role (GGUF).
  std::function<std::string(int layer, int expert, const char* role)> expert;
};

// GGUF roles are the ggml names; HF names differ per role.
TensorNames gguf_names() {
  return {"token_embd.weight", "output_norm.weight", "output.weight",
          [](int l, const char* role) { return fmt::format("blk.{}.{}", l, role); }, nullptr};
}

using NameMap = std::vector<std::pair<std::string_view, std::string_view>>;

// transformers' names of the GGUF roles, per architecture where they differ. `prefix` is where
// the text model's modules sit: "model." ("model.language_model." in a multimodal checkpoint).
TensorNames hf_names(const HParams& hp, const std::string& prefix) {
  static const NameMap common = {
      {"attn_norm.weight", "input_layernorm.weight"},
      {"attn_q.weight", "self_attn.q_proj.weight"},
      {"attn_k.weight", "self_attn.k_proj.weight"},
      {"attn_v.weight", "self_attn.v_proj.weight"},
      {"attn_output.weight", "self_attn.o_proj.weight"},
      {"attn_q.bias", "self_attn.q_proj.bias"},
      {"attn_k.bias", "self_attn.k_proj.bias"},
      {"attn_v.bias", "self_attn.v_proj.bias"},
      {"attn_q_norm.weight", "self_attn.q_norm.weight"},
      {"attn_k_norm.weight", "self_attn.k_norm.weight"},
      {"ffn_norm.weight", "post_attention_layernorm.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"},
      {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"},
      {"ffn_gate_inp.weight", "mlp.gate.weight"},  // Qwen3-MoE's router
  };
  // Gemma normalises before and after each sublayer; its "post_attention_layernorm" is the
  // norm after attention, not the one before the FFN.
  static const NameMap gemma = {
      {"post_attention_norm.weight", "post_attention_layernorm.weight"},
      {"ffn_norm.weight", "pre_feedforward_layernorm.weight"},
      {"post_ffw_norm.weight", "post_feedforward_layernorm.weight"},
  };
  static const NameMap phi3 = {
      {"attn_qkv.weight", "self_attn.qkv_proj.weight"},
      {"ffn_up.weight", "mlp.gate_up_proj.weight"},  // gate rows, then up rows, as in GGUF
  };
  static const NameMap mixtral = {{"ffn_gate_inp.weight", "block_sparse_moe.gate.weight"}};
  // Qwen3.5 (llama.cpp's gguf-py tensor_mapping.py): the Gated DeltaNet's modules, and the FFN's
  // input norm, which the qwen35 GGUF names post_attention_norm.
  static const NameMap qwen35 = {
      {"post_attention_norm.weight", "post_attention_layernorm.weight"},
      {"attn_qkv.weight", "linear_attn.in_proj_qkv.weight"},
      {"attn_gate.weight", "linear_attn.in_proj_z.weight"},
      {"ssm_beta.weight", "linear_attn.in_proj_b.weight"},
      {"ssm_alpha.weight", "linear_attn.in_proj_a.weight"},
      {"ssm_out.weight", "linear_attn.out_proj.weight"},
      {"ssm_conv1d.weight", "linear_attn.conv1d.weight"},  // [channels, 1, taps]
      {"ssm_dt.bias", "linear_attn.dt_bias"},
      {"ssm_a", "linear_attn.A_log"},  // log(-a): the loader takes -exp
      {"ssm_norm.weight", "linear_attn.norm.weight"},
  };
  const bool is_mixtral = hp.arch == Arch::Llama && hp.moe();
  const NameMap* special = hp.arch == Arch::Gemma2 || hp.arch == Arch::Gemma3 ? &gemma
                           : hp.arch == Arch::Phi3                            ? &phi3
                           : hp.arch == Arch::Qwen35                          ? &qwen35
                           : is_mixtral                                       ? &mixtral
                                                                              : nullptr;
  TensorNames n{prefix + "embed_tokens.weight", prefix + "norm.weight", "lm_head.weight",
                [special, prefix](int l, const char* role) {
                  for (const NameMap* m : {special, &common})
                    if (m)
                      for (const auto& [g, h] : *m)
                        if (g == role) return fmt::format("{}layers.{}.{}", prefix, l, h);
                  return fmt::format("{}layers.{}.{}", prefix, l, role);
                },
                nullptr};
  if (hp.moe())
    n.expert = [is_mixtral, prefix](int l, int e, const char* role) {
      const std::string_view r = role;
      // Mixtral's w1, w3, w2 are the gate, up and down projections.
      const char* name = r == "ffn_gate_exps.weight" ? (is_mixtral ? "w1" : "gate_proj")
                         : r == "ffn_up_exps.weight" ? (is_mixtral ? "w3" : "up_proj")
                                                     : (is_mixtral ? "w2" : "down_proj");
      return fmt::format("{}layers.{}.{}.experts.{}.{}.weight", prefix, l,
                         is_mixtral ? "block_sparse_moe" : "mlp", e, name);
    };
  return n;
}

using Lookup = std::function<const TensorView*(const std::string&)>;

// Resolves tensors by name and checks each against the shape the hyperparameters imply.
class WeightBinder {
 public:
  WeightBinder(const std::string& file, Lookup lookup) : file_(file), lookup_(std::move(lookup)) {}

  const TensorView* find(const std::string& name) const { return lookup_(name); }
  const std::string& file() const { return file_; }

  TensorView matrix(const std::string& name, int64_t rows, int64_t cols) const {
    const TensorView* t = lookup_(name);
    if (!t) throw FormatError(file_, fmt::format("missing tensor {}", name));
    if (t->shape != std::vector<int64_t>{rows, cols})
      throw FormatError(file_, fmt::format("tensor {} has shape {}, expected {}", name,
                                           shape_string(t->shape), shape_string({rows, cols})));
    check_type(*t);
    return *t;
  }

  // Rows [first, first + count) of a matrix: the parts of a fused one (Phi-3's attn_qkv and
  // gate-up ffn_up), as views.
  static TensorView rows(const TensorView& t, int64_t first, int64_t count, const char* part) {
    return {fmt::format("{}[{}]", t.name, part),
            t.type,
            {count, t.cols()},
            t.data.subspan(static_cast<size_t>(first) * t.row_stride(),
                           static_cast<size_t>(count) * t.row_stride())};
  }

  // A stack of `n` matrices [rows, cols] (GGUF's 3-D expert tensors), as one 2-D view each.
  std::vector<TensorView> stacked(const std::string& name, int64_t n, int64_t rows,
                                  int64_t cols) const {
    const TensorView* t = lookup_(name);
    if (!t) throw FormatError(file_, fmt::format("missing tensor {}", name));
    if (t->shape != std::vector<int64_t>{n, rows, cols})
      throw FormatError(file_, fmt::format("tensor {} has shape {}, expected {}", name,
                                           shape_string(t->shape), shape_string({n, rows, cols})));
    check_type(*t);
    const uint64_t bytes = static_cast<uint64_t>(rows) * t->row_stride();
    std::vector<TensorView> out;
    for (int64_t e = 0; e < n; ++e)
      out.push_back({fmt::format("{}[{}]", name, e),
                     t->type,
                     {rows, cols},
                     t->data.subspan(static_cast<size_t>(e) * bytes, bytes)});
    return out;
  }

  // A depthwise convolution's taps, [channels, taps] one row per channel: a GGUF stores that
  // shape, PyTorch's Conv1d weight (Hugging Face) [channels, 1, taps] in the same order. Copied
  // to F32 (a few kilobytes per layer).
  std::vector<float> conv_taps(const std::string& name, int64_t channels, int64_t taps) const {
    const TensorView* t = lookup_(name);
    if (!t) throw FormatError(file_, fmt::format("missing tensor {}", name));
    if (t->shape != std::vector<int64_t>{channels, taps} &&
        t->shape != std::vector<int64_t>{channels, 1, taps})
      throw FormatError(file_, fmt::format("tensor {} has shape {}, expected {}", name,
                                           shape_string(t->shape), shape_string({channels, taps})));
    check_type(*t);
    std::vector<float> out(static_cast<size_t>(channels * taps));
    for (int64_t r = 0; r < channels; ++r)  // rows() is `channels` in either shape
      kernels::dequantize_row(t->type, t->row(r), &out[static_cast<size_t>(r * taps)], taps);
    return out;
  }

  std::vector<float> vector(const std::string& name, int64_t n, bool required = true) const {
    const TensorView* t = lookup_(name);
    if (!t) {
      if (required) throw FormatError(file_, fmt::format("missing tensor {}", name));
      return {};
    }
    if (t->elements() != n || t->shape.size() != 1)
      throw FormatError(file_, fmt::format("tensor {} has shape {}, expected [{}]", name,
                                           shape_string(t->shape), n));
    check_type(*t);
    std::vector<float> out(static_cast<size_t>(n));
    kernels::dequantize_row(t->type, t->data.data(), out.data(), n);
    return out;
  }

 private:
  void check_type(const TensorView& t) const {
    if (!info(t.type).computable)
      throw FormatError(file_, fmt::format("tensor {} has type {}, which reprise cannot compute",
                                           t.name, info(t.type).name));
  }

  std::string file_;
  Lookup lookup_;
};

// A Qwen3.5 block (llama.cpp 0c1e570 llama_model_qwen35::load_arch_tensors): a Gated DeltaNet
// or a gated full-attention layer, then the dense FFN, whose input norm is post_attention_norm.
void bind_qwen35_block(const HParams& hp, const WeightBinder& b, int l,
                       const std::function<std::string(const char*)>& n, BlockWeights& blk) {
  const DeltaNetShape& s = hp.delta;
  if (hp.is_recurrent(l)) {
    DeltaNetWeights& dn = blk.delta;
    dn.w_qkv = b.matrix(n("attn_qkv.weight"), s.conv_dim(), hp.n_embd);
    dn.w_z = b.matrix(n("attn_gate.weight"), s.value_dim(), hp.n_embd);
    dn.w_beta = b.matrix(n("ssm_beta.weight"), s.n_v_heads, hp.n_embd);
    dn.w_alpha = b.matrix(n("ssm_alpha.weight"), s.n_v_heads, hp.n_embd);
    dn.w_out = b.matrix(n("ssm_out.weight"), hp.n_embd, s.value_dim());
    dn.conv = b.conv_taps(n("ssm_conv1d.weight"), s.conv_dim(), s.conv_kernel);
    dn.dt_bias = b.vector(n("ssm_dt.bias"), s.n_v_heads);
    dn.a = b.vector(n("ssm_a"), s.n_v_heads);
    dn.norm = b.vector(n("ssm_norm.weight"), s.head_v_dim);
  } else {
    blk.wq = b.matrix(n("attn_q.weight"), 2 * int64_t{hp.q_dim()}, hp.n_embd);
    blk.wk = b.matrix(n("attn_k.weight"), hp.kv_dim(), hp.n_embd);
    blk.wv = b.matrix(n("attn_v.weight"), hp.kv_dim(), hp.n_embd);
    blk.wo = b.matrix(n("attn_output.weight"), hp.n_embd, hp.q_dim());
    blk.q_norm = b.vector(n("attn_q_norm.weight"), hp.head_dim);
    blk.k_norm = b.vector(n("attn_k_norm.weight"), hp.head_dim);
  }
  blk.ffn_norm = b.vector(n("post_attention_norm.weight"), hp.n_embd);
  blk.w_gate = b.matrix(n("ffn_gate.weight"), hp.n_ff, hp.n_embd);
  blk.w_up = b.matrix(n("ffn_up.weight"), hp.n_ff, hp.n_embd);
  blk.w_down = b.matrix(n("ffn_down.weight"), hp.n_embd, hp.n_ff);
}

Weights bind_weights(const HParams& hp, const WeightBinder& b, const TensorNames& names) {
  Weights w;
  w.token_embd = b.matrix(names.token_embd, hp.n_vocab, hp.n_embd);
  w.output_norm = b.vector(names.output_norm, hp.n_embd);
  w.output = b.find(names.output) && !hp.tied_output ? b.matrix(names.output, hp.n_vocab, hp.n_embd)
                                                     : w.token_embd;
  for (int l = 0; l < hp.n_layer; ++l) {
    auto n = [&](const char* role) { return names.block(l, role); };
    BlockWeights blk;
    blk.attn_norm = b.vector(n("attn_norm.weight"), hp.n_embd);
    if (hp.arch == Arch::Qwen35) {
      bind_qwen35_block(hp, b, l, n, blk);
      w.blocks.push_back(std::move(blk));
      continue;
    }
    if (b.find(n("attn_qkv.weight"))) {  // Phi-3: Q, K, V stacked in one matrix
      const TensorView qkv =
          b.matrix(n("attn_qkv.weight"), hp.q_dim() + 2 * hp.kv_dim(), hp.n_embd);
      blk.wq = WeightBinder::rows(qkv, 0, hp.q_dim(), "q");
      blk.wk = WeightBinder::rows(qkv, hp.q_dim(), hp.kv_dim(), "k");
      blk.wv = WeightBinder::rows(qkv, hp.q_dim() + hp.kv_dim(), hp.kv_dim(), "v");
    } else {
      blk.wq = b.matrix(n("attn_q.weight"), hp.q_dim(), hp.n_embd);
      blk.wk = b.matrix(n("attn_k.weight"), hp.kv_dim(), hp.n_embd);
      blk.wv = b.matrix(n("attn_v.weight"), hp.kv_dim(), hp.n_embd);
    }
    blk.wo = b.matrix(n("attn_output.weight"), hp.n_embd, hp.q_dim());
    blk.bq = b.vector(n("attn_q.bias"), hp.q_dim(), hp.qkv_bias);
    blk.bk = b.vector(n("attn_k.bias"), hp.kv_dim(), hp.qkv_bias);
    blk.bv = b.vector(n("attn_v.bias"), hp.kv_dim(), hp.qkv_bias);
    blk.q_norm = b.vector(n("attn_q_norm.weight"), hp.head_dim, hp.qk_norm);
    blk.k_norm = b.vector(n("attn_k_norm.weight"), hp.head_dim, hp.qk_norm);
    blk.attn_post_norm = b.vector(n("post_attention_norm.weight"), hp.n_embd, hp.post_norms);
    blk.ffn_norm = b.vector(n("ffn_norm.weight"), hp.n_embd);
    blk.ffn_post_norm = b.vector(n("post_ffw_norm.weight"), hp.n_embd, hp.post_norms);
    if (hp.moe()) {
      blk.router = b.matrix(n("ffn_gate_inp.weight"), hp.n_expert, hp.n_embd);
      if (names.expert) {
        auto x = [&](int e, const char* role, int64_t rows, int64_t cols) {
          return b.matrix(names.expert(l, e, role), rows, cols);
        };
        for (int e = 0; e < hp.n_expert; ++e)
          blk.experts.push_back({x(e, "ffn_gate_exps.weight", hp.n_ff_exp, hp.n_embd),
                                 x(e, "ffn_up_exps.weight", hp.n_ff_exp, hp.n_embd),
                                 x(e, "ffn_down_exps.weight", hp.n_embd, hp.n_ff_exp)});
      } else {
        auto gate = b.stacked(n("ffn_gate_exps.weight"), hp.n_expert, hp.n_ff_exp, hp.n_embd);
        auto up = b.stacked(n("ffn_up_exps.weight"), hp.n_expert, hp.n_ff_exp, hp.n_embd);
        auto down = b.stacked(n("ffn_down_exps.weight"), hp.n_expert, hp.n_embd, hp.n_ff_exp);
        for (int e = 0; e < hp.n_expert; ++e) blk.experts.push_back({gate[e], up[e], down[e]});
      }
    } else if (hp.arch == Arch::Phi3) {  // ffn_up holds the gate rows, then the up rows
      const TensorView up = b.matrix(n("ffn_up.weight"), 2 * int64_t{hp.n_ff}, hp.n_embd);
      blk.w_gate = WeightBinder::rows(up, 0, hp.n_ff, "gate");
      blk.w_up = WeightBinder::rows(up, hp.n_ff, hp.n_ff, "up");
      blk.w_down = b.matrix(n("ffn_down.weight"), hp.n_embd, hp.n_ff);
    } else {
      blk.w_gate = b.matrix(n("ffn_gate.weight"), hp.n_ff, hp.n_embd);
      blk.w_up = b.matrix(n("ffn_up.weight"), hp.n_ff, hp.n_embd);
      blk.w_down = b.matrix(n("ffn_down.weight"), hp.n_embd, hp.n_ff);
    }
    w.blocks.push_back(std::move(blk));
  }
  return w;
}

// A file's rope frequency divisors (rotary_dims() / 2 of them), or none when the file has no
// such tensor. They divide frequencies, so each must be a positive number.
std::vector<float> rope_factors(const WeightBinder& b, const std::string& name, const HParams& hp) {
  std::vector<float> f = b.vector(name, hp.rotary_dims() / 2, /*required=*/false);
  for (size_t i = 0; i < f.size(); ++i)
    if (!(f[i] > 0) || !std::isfinite(f[i]))
      throw FormatError(
          b.file(), fmt::format("tensor {}[{}] is {}, expected a positive factor", name, i, f[i]));
  return f;
}

}  // namespace

uint64_t BlockWeights::matrix_bytes() const {
  return token_matrix_bytes(static_cast<int>(experts.size()));
}

uint64_t BlockWeights::token_matrix_bytes(int n_expert_used) const {
  uint64_t n = 0;
  for (const TensorView* t : {&wq, &wk, &wv, &wo, &w_gate, &w_up, &w_down, &router, &delta.w_qkv,
                              &delta.w_z, &delta.w_beta, &delta.w_alpha, &delta.w_out})
    n += t->data.size();
  if (moe()) {
    const ExpertWeights& e = experts.front();  // every expert has the same shapes and type
    n += static_cast<uint64_t>(n_expert_used) *
         (e.w_gate.data.size() + e.w_up.data.size() + e.w_down.data.size());
  }
  return n;
}

double BlockWeights::token_matmul_flops(int n_expert_used) const {
  double n = 0;
  for (const TensorView* t : {&wq, &wk, &wv, &wo, &w_gate, &w_up, &w_down, &router, &delta.w_qkv,
                              &delta.w_z, &delta.w_beta, &delta.w_alpha, &delta.w_out})
    if (!t->data.empty()) n += 2.0 * static_cast<double>(t->elements());
  if (moe()) {
    const ExpertWeights& e = experts.front();
    n += 2.0 * n_expert_used *
         static_cast<double>(e.w_gate.elements() + e.w_up.elements() + e.w_down.elements());
  }
  return n;
}

Model::~Model() = default;

std::unique_ptr<Model> Model::load(const std::filesystem::path& path, Need need) {
  std::unique_ptr<Model> m(new Model());
  m->path_ = path.string();
  std::error_code ec;
  bool is_dir = std::filesystem::is_directory(path, ec);
  if (!is_dir && !std::filesystem::exists(path, ec))
    throw Error(fmt::format("{}: no such file or directory", path.string()));
  if (is_dir || path.extension() == ".safetensors" || path.filename() == "config.json")
    m->load_safetensors(path);
  else
    m->load_gguf(path, need);
  return m;
}

void Model::load_gguf(const std::filesystem::path& path, Need need) {
  gguf_ = GgufFile::open(path);
  name_ = gguf_->get_string("general.name").value_or(path.stem().string());
  // A vocabulary-only file: no tensors, a tokenizer. Its architecture may be one reprise cannot
  // run, which does not matter for tokenizing, so it is kept as a name only. (A file with neither
  // falls through to the metadata checks, whose errors say what is missing.)
  if (gguf_->tensors().empty() && gguf_->find("tokenizer.ggml.model")) {
    if (need == Need::Weights)
      throw FormatError(gguf_->path(),
                        "has no tensors (a vocabulary-only file): it can only "
                        "tokenize, not run");
    Vocab vocab = vocab_from_gguf(*gguf_);
    hparams_.arch_name = gguf_->get_string("general.architecture").value_or("");
    hparams_.n_vocab = vocab.size();
    tokenizer_ = make_tokenizer(std::move(vocab));
    vocab_only_ = true;
    return;
  }
  hparams_ = hparams_from_gguf(*gguf_);
  WeightBinder binder(gguf_->path(), [this](const std::string& n) { return gguf_->tensor(n); });
  weights_ = bind_weights(hparams_, binder, gguf_names());
  // Rope frequency divisors, one per rotated pair: Llama 3's, or Phi-3's long-rope pair (the
  // 128k-context and Phi-4-mini files), of which a session picks one by its context size.
  hparams_.rope_freq_factors = rope_factors(binder, "rope_freqs.weight", hparams_);
  hparams_.rope_long_factors = rope_factors(binder, "rope_factors_long.weight", hparams_);
  hparams_.rope_short_factors = rope_factors(binder, "rope_factors_short.weight", hparams_);
  Vocab vocab = vocab_from_gguf(*gguf_);
  if (vocab.model != Vocab::Model::None) tokenizer_ = make_tokenizer(std::move(vocab));
}

void Model::load_safetensors(const std::filesystem::path& path) {
  std::filesystem::path dir = std::filesystem::is_directory(path) ? path : path.parent_path();
  safetensors_ = SafetensorsModel::open(dir);
  const std::string config_path = (dir / "config.json").string();
  if (!std::filesystem::exists(dir / "config.json"))
    throw FormatError(config_path, "missing (a safetensors model needs its config.json)");
  hparams_ = hparams_from_hf_config(safetensors_->config(), config_path);
  name_ = dir.filename().string();
  WeightBinder binder(dir.string(),
                      [this](const std::string& n) { return safetensors_->tensor(n); });
  // A multimodal checkpoint (Qwen3_5ForConditionalGeneration) keeps its text model under
  // model.language_model.; its vision tower's and MTP head's tensors are not read.
  const std::string prefix = safetensors_->tensor("model.language_model.embed_tokens.weight")
                                 ? "model.language_model."
                                 : "model.";
  weights_ = bind_weights(hparams_, binder, hf_names(hparams_, prefix));
  if (hparams_.tied_output) weights_.output = weights_.token_embd;
  // Gemma's and Qwen3.5's RMSNorm multiplies by (1 + w) and HF stores w; GGUF stores 1 + w,
  // which is what the forward pass uses. (Not the norm of a DeltaNet output head, a plain w.)
  const bool zero_centred_norms = hparams_.arch == Arch::Gemma2 || hparams_.arch == Arch::Gemma3 ||
                                  hparams_.arch == Arch::Qwen35;
  if (zero_centred_norms) {
    auto plus_one = [](std::vector<float>& w) {
      for (float& x : w) x += 1.0f;
    };
    plus_one(weights_.output_norm);
    for (BlockWeights& blk : weights_.blocks)
      for (std::vector<float>* w : {&blk.attn_norm, &blk.ffn_norm, &blk.attn_post_norm,
                                    &blk.ffn_post_norm, &blk.q_norm, &blk.k_norm})
        plus_one(*w);
  }
  // Qwen3.5 stores A_log; the GGUF stores (and the forward pass uses) a = -exp(A_log), computed
  // here in double and rounded once to float.
  for (BlockWeights& blk : weights_.blocks)
    for (float& a : blk.delta.a) a = static_cast<float>(-std::exp(static_cast<double>(a)));
  if (auto vocab = vocab_from_hf_dir(dir)) tokenizer_ = make_tokenizer(std::move(*vocab));
}

uint64_t Model::mapped_bytes() const {
  if (gguf_) return gguf_->file_size();
  uint64_t n = 0;
  if (safetensors_)
    for (const auto& f : safetensors_->files()) n += std::filesystem::file_size(f);
  return n;
}

}  // namespace reprise
