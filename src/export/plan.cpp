#include "export/plan.h"

#include <fmt/format.h>

#include <cstring>
#include <map>
#include <set>
#include <tuple>

#include "format/gguf.h"
#include "format/safetensors.h"
#include "kernels/quant.h"
#include "util/error.h"

namespace reprise::exporter {
namespace {

// Per-block tensors of the llama family, by GGUF role, with their Hugging Face names. Optional
// ones (biases, Q/K norms) are exported when the source has them.
struct BlockRole {
  const char* gguf;
  const char* hf;
  enum { None, QHeads, KHeads } rope_rows;  // rows grouped per rope head (Q or K)
};
constexpr BlockRole kBlockRoles[] = {
    {"attn_norm.weight", "input_layernorm.weight", BlockRole::None},
    {"attn_qkv.weight", "self_attn.qkv_proj.weight", BlockRole::None},  // Phi-3 (GGUF export only)
    {"attn_q.weight", "self_attn.q_proj.weight", BlockRole::QHeads},
    {"attn_k.weight", "self_attn.k_proj.weight", BlockRole::KHeads},
    {"attn_v.weight", "self_attn.v_proj.weight", BlockRole::None},
    {"attn_output.weight", "self_attn.o_proj.weight", BlockRole::None},
    {"attn_q.bias", "self_attn.q_proj.bias", BlockRole::QHeads},
    {"attn_k.bias", "self_attn.k_proj.bias", BlockRole::KHeads},
    {"attn_v.bias", "self_attn.v_proj.bias", BlockRole::None},
    {"attn_q_norm.weight", "self_attn.q_norm.weight", BlockRole::None},
    {"attn_k_norm.weight", "self_attn.k_norm.weight", BlockRole::None},
    {"post_attention_norm.weight", "post_attention_norm.weight", BlockRole::None},  // Gemma
    {"ffn_norm.weight", "post_attention_layernorm.weight", BlockRole::None},
    {"ffn_gate.weight", "mlp.gate_proj.weight", BlockRole::None},
    {"ffn_up.weight", "mlp.up_proj.weight", BlockRole::None},
    {"ffn_down.weight", "mlp.down_proj.weight", BlockRole::None},
    // Mixture of experts (GGUF export only): the router and the experts stacked in 3-D tensors,
    // copied whole with their block.
    {"ffn_gate_inp.weight", "mlp.gate.weight", BlockRole::None},
    {"ffn_gate_exps.weight", "mlp.experts.gate_proj.weight", BlockRole::None},
    {"ffn_up_exps.weight", "mlp.experts.up_proj.weight", BlockRole::None},
    {"ffn_down_exps.weight", "mlp.experts.down_proj.weight", BlockRole::None},
    {"post_ffw_norm.weight", "post_ffw_norm.weight", BlockRole::None},  // Gemma (GGUF export only)
    // Qwen3.5 linear-attention layers (GGUF export only; their attn_qkv is Phi-3's role above).
    {"attn_gate.weight", "attn_gate.weight", BlockRole::None},
    {"ssm_conv1d.weight", "ssm_conv1d.weight", BlockRole::None},
    {"ssm_dt.bias", "ssm_dt.bias", BlockRole::None},
    {"ssm_a", "ssm_a", BlockRole::None},
    {"ssm_beta.weight", "ssm_beta.weight", BlockRole::None},
    {"ssm_alpha.weight", "ssm_alpha.weight", BlockRole::None},
    {"ssm_norm.weight", "ssm_norm.weight", BlockRole::None},
    {"ssm_out.weight", "ssm_out.weight", BlockRole::None},
};

constexpr const char* kEmbd = "token_embd.weight";
constexpr const char* kOutputNorm = "output_norm.weight";
constexpr const char* kOutput = "output.weight";
constexpr const char* kRopeFreqs = "rope_freqs.weight";
constexpr const char* kRopeLong = "rope_factors_long.weight";
constexpr const char* kRopeShort = "rope_factors_short.weight";
constexpr std::string_view kRouter = "ffn_gate_inp.weight";

// Global rope-factor tensors: GGUF only (Hugging Face keeps them in config.json).
bool is_rope_factor_role(const std::string& role) {
  return role == kRopeFreqs || role == kRopeLong || role == kRopeShort;
}

// The last weights before each sublayer's output enters the residual stream: a damped position
// scales them. Those are the output projections, or, in Gemma, the norms applied after them
// (an RMS norm would undo a scaled projection; its weight is the plain multiplier in GGUF).
bool writes_residual(std::string_view suffix, bool post_norms) {
  if (post_norms) return suffix == "post_attention_norm.weight" || suffix == "post_ffw_norm.weight";
  return suffix == "attn_output.weight" || suffix == "ffn_down.weight" ||
         suffix == "ffn_down_exps.weight" || suffix == "ssm_out.weight";
}

// "blk.12.attn_q.weight" -> (12, "attn_q.weight"); (-1, role) for global tensors.
std::pair<int, std::string> split_role(const std::string& role) {
  if (!role.starts_with("blk.")) return {-1, role};
  const size_t dot = role.find('.', 4);
  if (dot == std::string::npos) return {-1, role};
  return {std::stoi(role.substr(4, dot - 4)), role.substr(dot + 1)};
}

bool is_float_type(TensorType t) {
  return t == TensorType::F32 || t == TensorType::F16 || t == TensorType::BF16;
}

// The type a row of `cols` elements can actually take when `want` does not divide it:
// K-quants (256-element blocks) and Q4_0 step down to Q8_0, anything else to F16.
TensorType fit_rows(TensorType want, int64_t cols) {
  if (cols % info(want).block_elems == 0) return want;
  if (want != TensorType::Q8_0 && cols % info(TensorType::Q8_0).block_elems == 0)
    return TensorType::Q8_0;
  return TensorType::F16;
}

}  // namespace

TensorType q4_k_m_type(std::string_view role, int block, int n_blocks, bool is_output_head) {
  if (is_output_head) return TensorType::Q6_K;
  // The first and last eighth of the blocks, and every third block in between, get more bits
  // for the tensors whose errors hurt most.
  const bool more_bits = block >= 0 && (block < n_blocks / 8 || block >= 7 * n_blocks / 8 ||
                                        (block - n_blocks / 8) % 3 == 2);
  if (more_bits &&
      (role == "attn_v.weight" || role == "ffn_down.weight" || role == "ffn_down_exps.weight"))
    return TensorType::Q6_K;
  return TensorType::Q4_K;
}

std::string hf_name(const std::string& role) {
  if (role == kEmbd) return "model.embed_tokens.weight";
  if (role == kOutputNorm) return "model.norm.weight";
  if (role == kOutput) return "lm_head.weight";
  auto [layer, suffix] = split_role(role);
  if (layer < 0) return role;
  for (const auto& r : kBlockRoles)
    if (suffix == r.gguf) return fmt::format("model.layers.{}.{}", layer, r.hf);
  return fmt::format("model.layers.{}.{}", layer, suffix);
}

const TensorView* source_tensor(const Model& m, const std::string& role) {
  if (m.gguf()) return m.gguf()->tensor(role);
  if (m.safetensors())
    return is_rope_factor_role(role) ? nullptr : m.safetensors()->tensor(hf_name(role));
  return nullptr;
}

namespace {

// Builds one Plan: which source tensor each output role takes, in which type, row order and
// scale, with the notes a user should read about what the conversion did.
class Planner {
 public:
  Planner(const Model& m, const LayerPath& path, Layout layout, const TypeSpec& spec)
      : m_(m), hp_(m.hparams()), path_(path), layout_(layout), spec_(spec) {}

  Plan run() {
    // Tied heads stay tied: the output file gets no separate head either, and the embedding,
    // being the head, gets the head's type under Q4_K_M.
    plan_.tied_output = hp_.tied_output || !source_tensor(m_, kOutput);
    if (!add(kEmbd, kEmbd, -1, /*output_head=*/plan_.tied_output, 0))
      throw FormatError(m_.path(), "missing tensor token_embd.weight");
    if (layout_ == Layout::Gguf) add_rope_factors();
    add_blocks();
    if (!add(kOutputNorm, kOutputNorm, -1, /*output_head=*/false, 0))
      throw FormatError(m_.path(), "missing tensor output_norm.weight");
    add_output_head();
    note_left_out();
    plan_.notes.assign(notes_.begin(), notes_.end());
    return std::move(plan_);
  }

 private:
  // The type a tensor is written in, noting any conversion a user should know about.
  TensorType out_type(const std::string& suffix, int block, const TensorView& src,
                      bool output_head) {
    if (src.shape.size() == 1) return TensorType::F32;
    // The router stays in float whatever --type says, as llama-quantize leaves it: its few
    // weights decide which experts run, so rounding them changes the routing, not just a value.
    if (suffix == kRouter && spec_.kind != TypeSpec::Kind::Keep)
      return is_float_type(src.type) ? src.type : TensorType::F32;
    TensorType want = src.type;
    switch (spec_.kind) {
      case TypeSpec::Kind::Keep:
        if (layout_ == Layout::Hf && !is_float_type(src.type)) {
          notes_.insert(fmt::format("{} matrices dequantized to F32 (safetensors has no {})",
                                    info(src.type).name, info(src.type).name));
          want = TensorType::F32;
        }
        return want;
      case TypeSpec::Kind::Fixed:
        want = spec_.type;
        break;
      case TypeSpec::Kind::Q4_K_M:
        want = q4_k_m_type(suffix, block, path_.size(), output_head);
        break;
    }
    const TensorType got = fit_rows(want, src.cols());
    if (got != want)
      notes_.insert(fmt::format("{} rows of {} elements are not whole {} blocks: written as {}",
                                suffix, src.cols(), info(want).name, info(got).name));
    if (!is_float_type(src.type) && got != src.type)
      notes_.insert(
          fmt::format("{} weights are dequantized before conversion to {}: the errors of "
                      "both quantizations add up",
                      info(src.type).name, info(got).name));
    return got;
  }

  // Adds the tensor of source role `from` as output role `to`; false when the source has none.
  // `rope_heads` > 0: Q or K rows of that many heads, reordered between rope layouts when the
  // formats differ. `scale` multiplies every weight (a damped block's residual writers).
  bool add(const std::string& to, const std::string& from, int block, bool output_head,
           int rope_heads, float scale = 1.0f) {
    const TensorView* src = source_tensor(m_, from);
    if (!src) return false;
    used_.insert(src->name);
    PlannedTensor t;
    t.role = to;
    t.name = layout_ == Layout::Gguf ? to : hf_name(to);
    t.src = src;
    t.shape = src->shape;
    t.block = block;
    t.type = out_type(split_role(to).second, block, *src, output_head);
    t.scale = scale;
    if (scale != 1.0f && !is_float_type(t.type))
      notes_.insert(fmt::format(
          "damped blocks: {} weights scaled and requantized to {}, which adds one quantization "
          "error to those matrices (a float --type keeps the export within float rounding)",
          info(src->type).name, info(t.type).name));
    const Layout source_layout = m_.gguf() ? Layout::Gguf : Layout::Hf;
    if (rope_heads > 0 && hp_.arch == Arch::Llama && layout_ != source_layout) {
      t.order =
          layout_ == Layout::Gguf ? RowOrder::HalvesToInterleaved : RowOrder::InterleavedToHalves;
      t.head_dim = hp_.head_dim;
      if (src->shape[0] != int64_t{rope_heads} * hp_.head_dim)
        throw FormatError(m_.path(),
                          fmt::format("tensor {} has {} rows, expected {} heads of {}", src->name,
                                      src->shape[0], rope_heads, hp_.head_dim));
    }
    t.nbytes =
        row_bytes(t.type, static_cast<uint64_t>(src->cols())) * static_cast<uint64_t>(src->rows());
    auto [it, fresh] = first_use_.emplace(std::tuple{src, t.type, t.order, t.scale},
                                          static_cast<int>(plan_.tensors.size()));
    if (!fresh) t.same_as = it->second;
    plan_.tensors.push_back(std::move(t));
    return true;
  }

  // Rope factors, which belong to the model, not to a layer: Llama 3's and Phi-3's long-rope
  // pair, each the file's tensor or the config's values written as one. (Hugging Face has no
  // rope-factor tensor: that scaling lives in config.json there.) The long-rope keys that go
  // with them (original context, attention factor) are metadata.
  void add_rope_factors() {
    add_rope_factor(kRopeFreqs, hp_.rope_freq_factors);
    add_rope_factor(kRopeLong, hp_.rope_long_factors);
    add_rope_factor(kRopeShort, hp_.rope_short_factors);
  }
  void add_rope_factor(const char* role, const std::vector<float>& values) {
    if (add(role, role, -1, /*output_head=*/false, 0) || values.empty()) return;
    PlannedTensor t;
    t.role = t.name = role;
    t.values = values;
    t.shape = {static_cast<int64_t>(t.values.size())};
    t.nbytes = t.values.size() * sizeof(float);
    plan_.tensors.push_back(std::move(t));
  }

  // One output block per path position, copied from the physical layer it runs.
  void add_blocks() {
    for (int p = 0; p < path_.size(); ++p) {
      const int layer = path_.layers[p];
      for (const auto& r : kBlockRoles) {
        const int heads = r.rope_rows == BlockRole::QHeads   ? hp_.n_head
                          : r.rope_rows == BlockRole::KHeads ? hp_.n_head_kv
                                                             : 0;
        add(fmt::format("blk.{}.{}", p, r.gguf), fmt::format("blk.{}.{}", layer, r.gguf), p,
            /*output_head=*/false, heads,
            writes_residual(r.gguf, hp_.post_norms) ? path_.alpha_at(p) : 1.0f);
      }
    }
  }

  void add_output_head() {
    if (!plan_.tied_output) {
      add(kOutput, kOutput, -1, /*output_head=*/true, 0);
    } else if (const TensorView* head = source_tensor(m_, kOutput)) {
      used_.insert(head->name);
      notes_.insert(fmt::format("{} not written: the config ties the output head to the embedding",
                                head->name));
    }
  }

  // Tensors of layers the path skips are expected to be left out; anything else the source has
  // but no role names is left out too, and said so.
  void note_left_out() {
    std::set<std::string> known = used_;
    // An HF export carries these as config.json rope_scaling.
    for (const char* r : {kRopeFreqs, kRopeLong, kRopeShort}) known.insert(r);
    for (int l = 0; l < hp_.n_layer; ++l)
      for (const auto& r : kBlockRoles) {
        const std::string role = fmt::format("blk.{}.{}", l, r.gguf);
        known.insert(m_.gguf() ? role : hf_name(role));
      }
    const std::vector<TensorView>& all =
        m_.gguf() ? m_.gguf()->tensors() : m_.safetensors()->tensors();
    for (const auto& t : all)
      if (!known.count(t.name))
        notes_.insert(fmt::format("tensor {} not exported (reprise does not use it)", t.name));
  }

  const Model& m_;
  const HParams& hp_;
  const LayerPath& path_;
  const Layout layout_;
  const TypeSpec& spec_;
  Plan plan_;
  std::set<std::string> notes_;  // deduplicated, then kept in sorted order
  std::set<std::string> used_;   // source tensor names taken
  // Output tensors that would hold the same bytes: later ones point at the first.
  std::map<std::tuple<const TensorView*, TensorType, RowOrder, float>, int> first_use_;
};

}  // namespace

Plan make_plan(const Model& m, const LayerPath& path, Layout layout, const TypeSpec& spec) {
  if (layout == Layout::Hf && spec.kind != TypeSpec::Kind::Keep &&
      (spec.kind == TypeSpec::Kind::Q4_K_M || !is_float_type(spec.type)))
    throw Error(
        fmt::format("--type {}: safetensors has no ggml quantized types; use keep, F32, "
                    "F16 or BF16 for an HF export",
                    spec.name));
  return Planner(m, path, layout, spec).run();
}

namespace {

int64_t source_row(const PlannedTensor& t, int64_t r) {
  if (t.order == RowOrder::Same) return r;
  const int64_t d = t.head_dim, half = d / 2, head = r / d, m = r % d;
  // Interleaved index 2i + j <-> halves index j * d/2 + i (i < d/2, j in {0, 1}).
  const int64_t from =
      t.order == RowOrder::HalvesToInterleaved ? (m % 2) * half + m / 2 : 2 * (m % half) + m / half;
  return head * d + from;
}

}  // namespace

void produce(const PlannedTensor& t, std::span<std::byte> out, ThreadPool& pool) {
  if (out.size() != t.nbytes)
    throw Error(
        fmt::format("export: tensor {} needs {} bytes, got {}", t.name, t.nbytes, out.size()));
  if (!t.values.empty()) {
    kernels::quantize_row(t.type, t.values.data(), out.data(),
                          static_cast<int64_t>(t.values.size()));
    return;
  }
  const TensorView& src = *t.src;
  if (t.verbatim()) {
    std::memcpy(out.data(), src.data.data(), out.size());
    return;
  }
  if (src.shape.size() == 1) {
    // Vectors (norms, biases): decode, reorder elements like rows of one, encode.
    const int64_t n = src.elements();
    std::vector<float> in(static_cast<size_t>(n)), v(static_cast<size_t>(n));
    kernels::dequantize_row(src.type, src.data.data(), in.data(), n);
    for (int64_t i = 0; i < n; ++i) v[i] = in[source_row(t, i)] * t.scale;
    kernels::quantize_row(t.type, v.data(), out.data(), n);
    return;
  }
  const int64_t rows = src.rows(), cols = src.cols();
  const uint64_t out_stride = row_bytes(t.type, static_cast<uint64_t>(cols));
  const bool copy_rows = src.type == t.type && t.scale == 1.0f;
  pool.parallel_for(rows, [&](int64_t r0, int64_t r1) {
    std::vector<float> buf(copy_rows ? 0 : static_cast<size_t>(cols));
    for (int64_t r = r0; r < r1; ++r) {
      const std::byte* in = src.row(source_row(t, r));
      std::byte* dst = out.data() + r * out_stride;
      if (copy_rows) {
        std::memcpy(dst, in, out_stride);
      } else {
        kernels::dequantize_row(src.type, in, buf.data(), cols);
        if (t.scale != 1.0f)
          for (float& v : buf) v *= t.scale;
        kernels::quantize_row(t.type, buf.data(), dst, cols);
      }
    }
  });
}

}  // namespace reprise::exporter
