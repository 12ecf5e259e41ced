#include "engine/session.h"

#include <unistd.h>

#include <fmt/format.h>

#include <algorithm>
#include <cstring>

#include "engine/attention.h"
#include "engine/moe.h"
#include "engine/prefix_cache.h"
#include "kernels/dispatch.h"
#include "kernels/ops.h"
#include "util/error.h"

namespace reprise {
namespace {

int resolve_ctx(const HParams& hp, int requested) {
  return requested > 0 ? requested : hp.default_ctx();
}

void check_path(const LayerPath& path, int n_layer) {
  if (path.layers.empty()) throw Error("layer path is empty");
  for (int l : path.layers)
    if (l < 0 || l >= n_layer)
      throw Error(
          fmt::format("layer path entry {} out of range (the model has {} layers)", l, n_layer));
}

uint64_t default_kv_limit() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return uint64_t{1} << 34;  // unknown: 16 GiB
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) / 4 * 3;
}

// Refuses a KV cache larger than the limit, with the numbers a user needs to pick a smaller one.
void check_kv_size(const HParams& hp, int n_positions, int n_ctx, KvType type, uint64_t limit) {
  if (limit == 0) limit = default_kv_limit();
  const uint64_t elem = type == KvType::F16 ? 2 : 4;
  const uint64_t per_ctx = 2 * static_cast<uint64_t>(n_positions) * hp.kv_dim() * elem;
  if (per_ctx == 0 || static_cast<uint64_t>(n_ctx) <= limit / per_ctx) return;
  constexpr double kMiB = 1 << 20;
  throw Error(fmt::format(
      "--ctx {}: the KV cache would need {:.0f} MiB ({} path positions x {} x {} values x {} "
      "bytes x K,V), more than the {:.0f} MiB limit; at most --ctx {} fits (--kv-type f16 halves "
      "it)",
      n_ctx, static_cast<double>(per_ctx) * n_ctx / kMiB, n_positions, n_ctx, hp.kv_dim(), elem,
      static_cast<double>(limit) / kMiB, limit / per_ctx));
}

bool same_rope(const RopeScaling& a, const RopeScaling& b) {
  return a.attn_factor == b.attn_factor && std::ranges::equal(a.factors, b.factors);
}

// x += alpha * delta, the residual update of a damped path position; alpha = 1 is the plain add.
void add_residual(float* x, const float* delta, int64_t n, float alpha) {
  if (alpha == 1.0f) return kernels::add(x, delta, n);
  for (int64_t i = 0; i < n; ++i) x[i] += alpha * delta[i];
}

}  // namespace

Session::Session(const Model& model, LayerPath path, const SessionOptions& opts)
    : model_(model),
      path_(std::move(path)),
      n_batch_(std::max(1, opts.n_batch)),
      pool_(opts.n_threads > 0 ? opts.n_threads : ThreadPool::default_threads()) {
  const HParams& hp = model.hparams();
  check_path(path_, hp.n_layer);
  const int n_ctx = resolve_ctx(hp, opts.n_ctx);
  if (n_ctx <= 0 || n_ctx > (1 << 20)) throw Error(fmt::format("--ctx {} is out of range", n_ctx));
  n_batch_ = std::min(n_batch_, n_ctx);
  max_kv_bytes_ = opts.max_kv_bytes;
  packed_ = PackedWeights::of(model);
  pack_ = opts.pack_weights;
  check_kv_size(hp, path_.size(), n_ctx, opts.kv_type, max_kv_bytes_);
  cache_ = KvCache(path_.size(), n_ctx, hp.kv_dim(), opts.kv_type);
  rope_ = hp.rope_scaling(n_ctx);  // long-rope models: the factors of this context size
  const size_t B = static_cast<size_t>(n_batch_);
  x_.resize(B * hp.n_embd);
  h_.resize(B * hp.n_embd);
  q_.resize(B * hp.q_dim());
  k_.resize(B * hp.kv_dim());
  v_.resize(B * hp.kv_dim());
  ctx_.resize(B * hp.q_dim());
  gate_.resize(B * hp.n_ff);
  up_.resize(B * hp.n_ff);
  out_.resize(B * hp.n_embd);
  if (hp.moe()) moe_ = MoeScratch(hp, n_batch_);
  if (hp.hybrid()) {
    recurrent_ = RecurrentState(hp, path_);
    delta_ = DeltaNetScratch(hp, n_batch_);
  }
}

void Session::set_path(LayerPath path) {
  check_path(path, model_.hparams().n_layer);
  if (path.size() != path_.size()) {
    check_kv_size(model_.hparams(), path.size(), cache_.n_ctx(), cache_.type(), max_kv_bytes_);
    cache_ = KvCache(path.size(), cache_.n_ctx(), cache_.kv_dim(), cache_.type());
  }
  path_ = std::move(path);
  if (model_.hparams().hybrid()) {
    recurrent_ = RecurrentState(model_.hparams(), path_);
    snapshot_ = {};
  }
  reset();
}

uint64_t Session::state_bytes() const {
  uint64_t n = 0;
  for (const auto* v : {&x_, &h_, &q_, &k_, &v_, &ctx_, &gate_, &up_, &out_, &logits_})
    n += v->capacity() * sizeof(float);
  return n + moe_.bytes() + cache_.bytes() + recurrent_.bytes() + delta_.bytes() +
         snapshot_.state.bytes();
}

void Session::truncate(int n) {
  if (n < 0 || n > n_past_)
    throw Error(fmt::format("cannot truncate a {}-token sequence to {}", n_past_, n));
  if (!recurrent_.empty() && n < n_past_) return rewind_recurrent(n);
  n_past_ = n;
  if (tokens_known_) tokens_.resize(static_cast<size_t>(n));
}

void Session::rewind_recurrent(int n) {
  if (!tokens_known_)
    throw Error(
        fmt::format("cannot truncate a {}-token sequence to {}: a linear-attention layer's "
                    "recurrent state cannot be cut back, and this session no longer knows "
                    "its tokens to recompute it",
                    n_past_, n));
  std::vector<int32_t> keep(tokens_.begin(), tokens_.begin() + n);
  if (!snapshot_.state.empty() && snapshot_.tokens == keep) {
    // The KV rows of positions < n are as they were when the snapshot was taken: later
    // prefills only wrote positions >= n.
    recurrent_ = snapshot_.state;
    n_past_ = n;
    tokens_ = std::move(keep);
    return;
  }
  reset();
  if (n > 0) prefill(keep);
  snapshot_ = {std::move(keep), recurrent_};
}

void check_token_ids(std::span<const int32_t> tokens, int n_vocab) {
  for (int32_t t : tokens)
    if (t < 0 || t >= n_vocab)
      throw Error(fmt::format("token id {} out of range (vocabulary has {} tokens)", t, n_vocab));
}

void Session::pack_before(int64_t T) {
  if (packed_ && pack_ && runs_gemm(T)) packed_->ensure(pool_);
}

void Session::matmul(const TensorView& w, const float* x, int64_t T, float* y) {
  // Decode (the matrix-vector kernels) reads w itself.
  kernels::matmul(w, x, T, y, pool_, gemm_only(),
                  packed_ && runs_gemm(T) ? packed_->find(w) : nullptr);
}

std::span<const float> Session::prefill(std::span<const int32_t> tokens, bool all_logits) {
  check_token_ids(tokens, model_.hparams().n_vocab);
  // Before the prefix cache, whose baseline session then runs on the packed weights too.
  pack_before(static_cast<int64_t>(tokens.size()));
  if (auto out = prefill_cached(tokens, all_logits); !out.empty()) return out;
  auto out = run(static_cast<int64_t>(tokens.size()), 0, all_logits, [&](int64_t start, int64_t T) {
    embed_rows(tokens.subspan(start, T), x_.data());
  });
  if (tokens_known_) tokens_.insert(tokens_.end(), tokens.begin(), tokens.end());
  return out;
}

void Session::embed(std::span<const int32_t> tokens, float* x) const {
  check_token_ids(tokens, model_.hparams().n_vocab);
  embed_rows(tokens, x);
}

void Session::embed_rows(std::span<const int32_t> tokens, float* x) const {
  const HParams& hp = model_.hparams();
  for (size_t t = 0; t < tokens.size(); ++t) {
    float* row = x + t * hp.n_embd;
    kernels::embedding_row(model_.weights().token_embd, tokens[t], row);
    if (hp.embd_scale != 1.0f)
      for (int i = 0; i < hp.n_embd; ++i) row[i] *= hp.embd_scale;
  }
}

void Session::logits_from_residual(std::span<const float> x, std::span<float> logits) {
  const HParams& hp = model_.hparams();
  const int64_t T = static_cast<int64_t>(x.size()) / hp.n_embd;
  if (static_cast<int64_t>(x.size()) != T * hp.n_embd ||
      static_cast<int64_t>(logits.size()) != T * hp.n_vocab)
    throw Error(
        fmt::format("logits_from_residual: {} stream values and {} logits are not T x {} "
                    "and T x {}",
                    x.size(), logits.size(), hp.n_embd, hp.n_vocab));
  for (int64_t start = 0; start < T; start += n_batch_) {  // h_ holds n_batch rows
    const int64_t n = std::min<int64_t>(n_batch_, T - start);
    output_head(&x[start * hp.n_embd], n, &logits[start * hp.n_vocab], /*observe=*/false);
  }
}

void Session::output_head(const float* x, int64_t n, float* logits, bool observe) {
  const HParams& hp = model_.hparams();
  const Weights& w = model_.weights();
  kernels::rmsnorm(x, w.output_norm.data(), n, hp.n_embd, hp.rms_eps, h_.data());
  if (observe && observer_) observer_->final_norm(h_.data(), n, hp.n_embd);
  matmul(w.output, h_.data(), n, logits);
  if (hp.final_softcap > 0) kernels::softcap(logits, n * hp.n_vocab, hp.final_softcap);
}

std::span<const float> Session::decode(int32_t token) {
  decoding_ = true;
  try {
    auto out = prefill({&token, 1});
    decoding_ = false;
    return out;
  } catch (...) {
    decoding_ = false;
    throw;
  }
}

std::span<const float> Session::prefill_cached(std::span<const int32_t> tokens, bool all_logits) {
  // The cache holds KV and residuals, not the recurrent state of a hybrid's linear-attention
  // layers, so a hybrid runs every position itself.
  if (!prefix_cache_ || observer_ || tokens.empty() || !tokens_known_ || !recurrent_.empty())
    return {};
  // A long-rope model's baseline computed at another context size rotated with other factors.
  if (!same_rope(prefix_cache_->rope_scaling(), rope_)) return {};
  const int b = prefix_cache_->shared_positions(path_);
  if (b == 0) return {};
  const int T = static_cast<int>(tokens.size());
  if (n_past_ + T > cache_.n_ctx())
    throw Error(fmt::format("context full: {} tokens past + {} new exceed --ctx {}", n_past_, T,
                            cache_.n_ctx()));
  std::vector<int32_t> seq(tokens_);
  seq.insert(seq.end(), tokens.begin(), tokens.end());
  const bool decode_only = T == 1 && n_past_ > 0 && b < path_.size();
  const bool invariant = gemm_only();
  const PrefixCache::Entry* e = decode_only ? prefix_cache_->find(seq, n_past_, invariant)
                                            : prefix_cache_->get(seq, n_past_, invariant);
  if (!e) return {};
  for (int s = 0; s < b; ++s) cache_.copy_rows_from(e->kv, s, 0, s, n_past_, T);
  auto out = run_residual(b, e->residual[b - 1], all_logits);
  tokens_ = std::move(seq);
  return out;
}

std::span<const float> Session::prefill_from_residual(int first_slot, std::span<const float> x,
                                                      bool all_logits) {
  tokens_known_ = false;
  tokens_.clear();
  return run_residual(first_slot, x, all_logits);
}

std::span<const float> Session::run_residual(int first_slot, std::span<const float> x,
                                             bool all_logits) {
  const int64_t d = model_.hparams().n_embd;
  if (first_slot < 0 || first_slot > path_.size())
    throw Error(
        fmt::format("path position {} out of range (path has {})", first_slot, path_.size()));
  if (x.size() % d != 0) throw Error("residual stream is not a whole number of rows");
  pack_before(static_cast<int64_t>(x.size()) / d);
  return run(static_cast<int64_t>(x.size() / d), first_slot, all_logits,
             [&](int64_t start, int64_t T) {
               std::copy(x.begin() + start * d, x.begin() + (start + T) * d, x_.begin());
             });
}

std::span<const float> Session::run(int64_t n_tokens, int first_slot, bool all_logits,
                                    const std::function<void(int64_t, int64_t)>& load_input) {
  const HParams& hp = model_.hparams();
  if (n_tokens == 0) throw Error("no tokens to process");
  if (n_past_ + n_tokens > cache_.n_ctx())
    throw Error(fmt::format("context full: {} tokens past + {} new exceed --ctx {}", n_past_,
                            n_tokens, cache_.n_ctx()));
  const size_t rows = all_logits ? n_tokens : 1;
  logits_.resize(rows * hp.n_vocab);
  tokens_run_ += n_tokens;
  for (int64_t start = 0; start < n_tokens; start += n_batch_) {
    const int64_t T = std::min<int64_t>(n_batch_, n_tokens - start);
    const bool last_chunk = start + T == n_tokens;
    float* out = all_logits ? logits_.data() + start * hp.n_vocab : logits_.data();
    load_input(start, T);
    forward_chunk(T, first_slot, all_logits, all_logits || last_chunk ? out : nullptr);
  }
  return logits_;
}

void Session::forward_chunk(int64_t T, int first_slot, bool all_logits, float* logits_out) {
  const HParams& hp = model_.hparams();
  const int d = hp.n_embd;
  layer_evals_ += T * (path_.size() - first_slot);
  for (int slot = first_slot; slot < path_.size(); ++slot) {
    run_block(slot, x_.data(), T, n_past_);
    if (observer_) observer_->block_out(slot, path_.layers[slot], x_.data(), T, d);
  }
  n_past_ += static_cast<int>(T);
  if (!logits_out) return;
  // Only the rows whose logits are wanted go through the final norm and the output head.
  const int64_t first = all_logits ? 0 : T - 1;
  output_head(&x_[first * d], T - first, logits_out, /*observe=*/true);
}

void Session::run_block(int slot, float* x, int64_t T, int pos0) {
  const HParams& hp = model_.hparams();
  const int layer = path_.layers[slot];
  const BlockWeights& b = model_.weights().blocks[layer];
  const int d = hp.n_embd;
  const float alpha = path_.alpha_at(slot);  // residual weight of this position (damped repeats)

  // Token mixing on h = norm(x): attention, or (hybrids) a Gated DeltaNet layer that carries
  // this path position's own recurrent state; x += alpha * its output.
  kernels::rmsnorm(x, b.attn_norm.data(), T, d, hp.rms_eps, h_.data());
  if (hp.is_recurrent(layer)) {
    delta_net_forward(hp, b.delta, h_.data(), T, recurrent_.conv(slot), recurrent_.ssm(slot),
                      delta_, out_.data(), pool_, gemm_only());
    add_residual(x, out_.data(), T * d, alpha);
  } else {
    attention_sublayer(slot, x, T, pos0);
  }
  ffn_sublayer(layer, x, T, alpha);
}

void Session::attention_sublayer(int slot, float* x, int64_t T, int pos0) {
  const HParams& hp = model_.hparams();
  const int layer = path_.layers[slot];
  const BlockWeights& b = model_.weights().blocks[layer];
  const LayerAttn attn = hp.layer_attn(layer);  // window and rope of the physical layer
  const int d = hp.n_embd, hd = hp.head_dim;
  const float alpha = path_.alpha_at(slot);
  // Attention: q, k, v = h W^T (+ bias); x += alpha * attention(q, k, v) Wo^T
  if (hp.attn_out_gate) {  // Qwen3.5: each head's query rows come with as many gate rows
    matmul(b.wq, h_.data(), T, delta_.qg.data());
    split_query_gate(delta_.qg.data(), T, hp.n_head, hd, q_.data(), delta_.gate.data());
  } else {
    matmul(b.wq, h_.data(), T, q_.data());
  }
  matmul(b.wk, h_.data(), T, k_.data());
  matmul(b.wv, h_.data(), T, v_.data());
  if (!b.bq.empty()) {
    kernels::add_bias(q_.data(), b.bq.data(), T, hp.q_dim());
    kernels::add_bias(k_.data(), b.bk.data(), T, hp.kv_dim());
    kernels::add_bias(v_.data(), b.bv.data(), T, hp.kv_dim());
  }
  if (!b.q_norm.empty()) {  // Qwen3 normalises every head of q and k on its own
    kernels::rmsnorm(q_.data(), b.q_norm.data(), T * hp.n_head, hd, hp.rms_eps, q_.data());
    kernels::rmsnorm(k_.data(), b.k_norm.data(), T * hp.n_head_kv, hd, hp.rms_eps, k_.data());
  }
  apply_rope(q_.data(), T, hp.n_head, hp, attn, rope_, pos0);
  apply_rope(k_.data(), T, hp.n_head_kv, hp, attn, rope_, pos0);
  for (int64_t t = 0; t < T; ++t)
    cache_.store(slot, pos0 + static_cast<int>(t), &k_[t * hp.kv_dim()], &v_[t * hp.kv_dim()]);
  causal_attention(q_.data(), cache_, slot, T, pos0, hp, attn, ctx_.data(), pool_);
  if (hp.attn_out_gate) apply_sigmoid_gate(ctx_.data(), delta_.gate.data(), T * hp.q_dim());
  matmul(b.wo, ctx_.data(), T, out_.data());
  // Gemma normalises each sublayer's output before the add (rmsnorm works in place row by row).
  if (!b.attn_post_norm.empty())
    kernels::rmsnorm(out_.data(), b.attn_post_norm.data(), T, d, hp.rms_eps, out_.data());
  add_residual(x, out_.data(), T * d, alpha);
}

void Session::ffn_sublayer(int layer, float* x, int64_t T, float alpha) {
  const HParams& hp = model_.hparams();
  const BlockWeights& b = model_.weights().blocks[layer];
  const int d = hp.n_embd;
  const bool inv = gemm_only();
  // Feed-forward: x += alpha * (act(h Wg^T) * (h Wu^T)) Wd^T with h = norm(x), or the weighted
  // sum of the experts the router picks for each token (the physical layer's own experts).
  kernels::rmsnorm(x, b.ffn_norm.data(), T, d, hp.rms_eps, h_.data());
  if (b.moe()) {
    moe_ffn(hp, b, h_.data(), T, out_.data(), moe_, pool_, inv);
  } else {
    matmul(b.w_gate, h_.data(), T, gate_.data());
    matmul(b.w_up, h_.data(), T, up_.data());
    if (hp.ffn_act == FfnAct::GeluTanh)
      kernels::geglu(gate_.data(), up_.data(), T * hp.n_ff);
    else
      kernels::swiglu(gate_.data(), up_.data(), T * hp.n_ff);
    matmul(b.w_down, gate_.data(), T, out_.data());
  }
  if (!b.ffn_post_norm.empty())
    kernels::rmsnorm(out_.data(), b.ffn_post_norm.data(), T, d, hp.rms_eps, out_.data());
  add_residual(x, out_.data(), T * d, alpha);
}

}  // namespace reprise
