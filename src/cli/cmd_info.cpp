// reprise info MODEL [--tensors]: architecture, hyperparameters, metadata and tensors.
#include <fmt/format.h>

#include <map>

#include "cli/commands.h"
#include "cli/common.h"
#include "format/gguf.h"
#include "format/safetensors.h"

namespace reprise::cli {
namespace {

struct InfoOptions {
  std::string model;
  int ctx = 0;  // the context whose rope scaling to report; 0 = a session's default
  bool tensors = false;
  bool metadata = true;
};

void print_tensor_table(const std::vector<TensorView>& tensors) {
  for (const auto& t : tensors)
    fmt::print("  {:<40} {:<5} {:<18} {:>12} bytes\n", t.name, info(t.type).name,
               shape_string(t.shape), t.data.size());
}

void print_metadata(const GgufFile& gguf) {
  fmt::print("metadata (GGUF v{}, {} keys):\n", gguf.version(), gguf.metadata().size());
  for (const auto& [key, value] : gguf.metadata())
    fmt::print("  {:<40} {}\n", key, format_value(value));
}

void print_tokenizer(const Tokenizer& tok) {
  const Vocab& v = tok.vocab();
  fmt::print("tokenizer:    {}",
             v.model == Vocab::Model::Spm ? "SentencePiece (llama)" : "BPE (gpt2)");
  if (v.model == Vocab::Model::Bpe)
    fmt::print(", pre-tokenizer {}", v.pre.empty() ? "default" : v.pre);
  fmt::print(", {} tokens, chat template {}\n", v.size(), v.chat_template.empty() ? "none" : "yes");
}

// Rope: its base and pairing, partial rotary, and which frequency factors a session of
// context n_ctx runs (a long-rope model's choice depends on it).
void print_rope(const HParams& hp, int n_ctx) {
  fmt::print("rope:         theta {}, {}", hp.rope_theta,
             hp.rope_style == RopeStyle::Interleaved ? "interleaved" : "neox");
  if (hp.rotary_dims() != hp.head_dim)
    fmt::print(", rotates {} of {} head dims", hp.rotary_dims(), hp.head_dim);
  const RopeScaling r = hp.rope_scaling(n_ctx);
  if (r.kind == RopeScaling::Kind::Llama3) fmt::print(", with frequency factors");
  fmt::print("\n");
  if (hp.rope_long_factors.empty() && hp.rope_short_factors.empty()) return;
  const int orig = hp.long_rope_orig_ctx();
  const char* which = r.kind == RopeScaling::Kind::LongRopeLong    ? "the long factors"
                      : r.kind == RopeScaling::Kind::LongRopeShort ? "the short factors"
                      : r.kind == RopeScaling::Kind::Llama3        ? "rope_freqs instead"
                                                                   : "no factors (none stored)";
  fmt::print(
      "long rope:    original context {}, attention factor {:.6g}; --ctx {} runs {} (short "
      "factors up to --ctx {}, long beyond)\n",
      orig, hp.rope_attn_factor, n_ctx, which, orig);
}

void print_gemma_features(const HParams& hp) {
  if (!hp.post_norms) return;
  fmt::print("block:        embeddings x {:.4g}, post-attention and post-FFN norms, {}{}\n",
             hp.embd_scale, hp.ffn_act == FfnAct::GeluTanh ? "GELU-tanh gated FFN" : "SwiGLU FFN",
             hp.qk_norm ? ", QK-norm" : "");
  fmt::print("attention:    score scale {:.6g}, soft-cap {}; final logit soft-cap {}\n",
             hp.score_scale(), hp.attn_softcap > 0 ? fmt::format("{:g}", hp.attn_softcap) : "none",
             hp.final_softcap > 0 ? fmt::format("{:g}", hp.final_softcap) : "none");
}

// What each physical layer's attention is (a layer path keeps these for every visit of a
// layer); runs of identical layers are listed as ranges.
void print_layer_kinds(const HParams& hp) {
  if (hp.layers.empty()) return;
  auto kind = [](const LayerAttn& l) {
    std::string s = l.window > 0 ? fmt::format("sliding window {}", l.window) : "global";
    if (!l.rope) return s + ", no rope";
    s += fmt::format(", rope base {:g}", l.rope_theta);
    if (l.rope_freq_scale != 1.0f) s += fmt::format(" x{:g} positions", l.rope_freq_scale);
    return s;
  };
  fmt::print("layer kinds:\n");
  for (int l = 0; l < hp.n_layer;) {
    const std::string k = kind(hp.layers[static_cast<size_t>(l)]);
    int e = l;
    while (e + 1 < hp.n_layer && kind(hp.layers[static_cast<size_t>(e + 1)]) == k) ++e;
    fmt::print("  {:<12} {}\n", e == l ? fmt::format("{}", l) : fmt::format("{}..{}", l, e), k);
    l = e + 1;
  }
}

// Qwen3.5 hybrids: which layers are Gated DeltaNet (a recurrent state per path position) and
// which are full attention (a KV cache per path position), as ranges of identical layers.
void print_hybrid_layers(const HParams& hp) {
  if (!hp.hybrid()) return;
  const DeltaNetShape& s = hp.delta;
  fmt::print(
      "linear attn:  Gated DeltaNet, {} key heads x {} and {} value heads x {}, conv kernel {}; "
      "full attention gated, rope on {} of {} dims\n",
      s.n_k_heads, s.head_k_dim, s.n_v_heads, s.head_v_dim, s.conv_kernel, hp.rotary_dims(),
      hp.head_dim);
  auto kind = [&](int l) { return hp.is_recurrent(l) ? "linear-attention" : "full-attention"; };
  fmt::print("layer kinds:\n");
  for (int l = 0; l < hp.n_layer;) {
    int e = l;
    while (e + 1 < hp.n_layer && hp.is_recurrent(e + 1) == hp.is_recurrent(l)) ++e;
    fmt::print("  {:<12} {}\n", e == l ? fmt::format("{}", l) : fmt::format("{}..{}", l, e),
               kind(l));
    l = e + 1;
  }
}

int run_info(const InfoOptions& o) {
  auto m = Model::load(o.model, Model::Need::Tokenizer);
  const HParams& hp = m->hparams();
  fmt::print("model:        {}\n", m->path());
  fmt::print("name:         {}\n", m->name());
  fmt::print("architecture: {}\n", hp.arch_name);
  if (m->vocab_only()) {
    fmt::print("weights:      none (a vocabulary-only file)\n");
    print_tokenizer(*m->tokenizer());
    if (o.metadata) print_metadata(*m->gguf());
    return 0;
  }
  fmt::print("layers:       {}\n", hp.n_layer);
  fmt::print("embedding:    {}\n", hp.n_embd);
  fmt::print("heads:        {} query, {} key/value, head dim {}\n", hp.n_head, hp.n_head_kv,
             hp.head_dim);
  if (hp.moe())
    fmt::print(
        "ffn:          mixture of {} experts of width {}, {} per token (softmax router, "
        "top-{} weights renormalized); every layer's own experts on a path\n",
        hp.n_expert, hp.n_ff_exp, hp.n_expert_used, hp.n_expert_used);
  else
    fmt::print("ffn:          {}\n", hp.n_ff);
  fmt::print("vocabulary:   {}{}\n", hp.n_vocab, m->tokenizer() ? "" : " (no tokenizer)");
  if (m->tokenizer()) print_tokenizer(*m->tokenizer());
  fmt::print("context:      {}\n", hp.n_ctx_train);
  print_rope(hp, o.ctx > 0 ? o.ctx : hp.default_ctx());
  fmt::print("rms eps:      {}\n", hp.rms_eps);
  print_gemma_features(hp);
  print_layer_kinds(hp);
  print_hybrid_layers(hp);
  fmt::print("output head:  {}\n", hp.tied_output || m->weights().output.data.data() ==
                                                         m->weights().token_embd.data.data()
                                       ? "tied to embedding"
                                       : "separate");
  const std::vector<TensorView>& tensors =
      m->gguf() ? m->gguf()->tensors() : m->safetensors()->tensors();
  std::map<std::string, std::pair<int, uint64_t>> by_type;
  uint64_t total = 0;
  for (const auto& t : tensors) {
    auto& e = by_type[std::string(info(t.type).name)];
    e.first++;
    e.second += t.data.size();
    total += t.data.size();
  }
  fmt::print("tensors:      {} ({:.2f} MiB)", tensors.size(), total / 1048576.0);
  for (const auto& [name, e] : by_type) fmt::print(", {} {}", e.first, name);
  fmt::print("\n");
  if (const GgufValue* ft = m->gguf() ? m->gguf()->find("general.file_type") : nullptr;
      ft && !ft->is_array() && ft->type != GgufType::STRING) {
    const auto label = llama_file_type_name(static_cast<uint32_t>(ft->i));
    fmt::print("file type:    {} (general.file_type {})\n", label ? *label : "unknown", ft->i);
  }
  if (m->gguf() && o.metadata) print_metadata(*m->gguf());
  if (o.tensors) {
    fmt::print("tensor list:\n");
    print_tensor_table(tensors);
  }
  return 0;
}

}  // namespace

void add_info(CLI::App& app, Runner& run) {
  auto o = std::make_shared<InfoOptions>();
  auto* sub = app.add_subcommand("info", "show a model's architecture, metadata and tensors");
  // Positional like `info MODEL`, or -m like every other command.
  sub->add_option("model,-m,--model", o->model,
                  "GGUF file (vocabulary-only files too) or safetensors directory")
      ->required();
  sub->add_option("-c,--ctx,--ctx-size", o->ctx,
                  "context size whose rope scaling to report (long-rope models choose their "
                  "factors by it; default: what other commands use)")
      ->check(CLI::PositiveNumber);
  sub->add_flag("--tensors", o->tensors, "list every tensor");
  sub->callback([&run, o] { run = [o] { return run_info(*o); }; });
}

}  // namespace reprise::cli
