// A running sequence: one model, one layer path, its KV cache and scratch buffers.
//
// Path position p runs physical block path[p] and reads/writes only KV slot p. All buffers are
// allocated once at construction (sized for n_batch tokens), so prefill and decode never
// allocate in the forward pass.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "engine/delta_net.h"
#include "engine/kv_cache.h"
#include "engine/layer_path.h"
#include "engine/moe.h"
#include "engine/packed_weights.h"
#include "kernels/dispatch.h"
#include "model/model.h"
#include "util/thread_pool.h"

namespace reprise {

// Optional per-layer observation hook (logit lens, scan prefix caching, golden tests).
// x is the residual stream [T, n_embd] of the tokens being processed.
class ForwardObserver {
 public:
  virtual ~ForwardObserver() = default;
  // After path position `slot` (physical layer `layer`) has added attention and FFN.
  virtual void block_out(int slot, int layer, const float* x, int64_t T, int64_t n_embd) = 0;
  // After the final RMSNorm, for the rows logits are computed for.
  virtual void final_norm(const float* /*x*/, int64_t /*T*/, int64_t /*n_embd*/) {}
};

struct SessionOptions {
  // Token positions in the KV cache; 0 = HParams::default_ctx(). A long-rope model (Phi-3
  // 128k, Phi-4-mini) runs its long factors when this exceeds its original context.
  int n_ctx = 0;
  int n_batch = 512;             // tokens per forward chunk during prefill
  int n_threads = 0;             // 0 = all cores
  KvType kv_type = KvType::F32;  // element type of the KV cache
  // Upper bound on the KV cache (K and V, all path positions), bytes; 0 = 3/4 of physical
  // memory. Beyond it the session refuses with an Error naming --ctx instead of failing to
  // allocate (or waking the OOM killer) halfway through.
  uint64_t max_kv_bytes = 0;
  // Pack the model's weights for the integer prefill at the first prefill of at least
  // kernels::kGemmMinTokens tokens (engine/packed_weights.h): for sessions that prefill many
  // times over the same weights (eval, scan, perplexity). Any session of the model uses what is
  // packed, whoever packed it.
  bool pack_weights = false;
};

class PrefixCache;

// Throws Error naming the first id outside [0, n_vocab): what every entry point that takes token
// ids (prefill, embed, the evaluator's requests) checks before using them as rows.
void check_token_ids(std::span<const int32_t> tokens, int n_vocab);

class Session {
 public:
  Session(const Model& model, LayerPath path, const SessionOptions& opts = {});

  const Model& model() const { return model_; }
  const LayerPath& path() const { return path_; }
  int n_past() const { return n_past_; }
  int n_ctx() const { return cache_.n_ctx(); }
  // The rope scaling this session's context size chose (long-rope models: long or short factors).
  const RopeScaling& rope_scaling() const { return rope_; }
  int n_batch() const { return n_batch_; }
  ThreadPool& pool() { return pool_; }

  // Forgets the sequence (KV contents become unused, recurrent states are zeroed).
  void reset() {
    n_past_ = 0;
    tokens_.clear();
    tokens_known_ = true;
    recurrent_.clear();
  }
  // Keeps only the first n tokens of the sequence, e.g. to reuse a shared few-shot prefix: the
  // next prefill continues at position n and overwrites what came after. A hybrid model's
  // recurrent state (Qwen3.5's linear-attention layers) cannot be cut back: it is restored from
  // the snapshot the last rewind to n left (if the first n tokens are the same), or recomputed
  // from the sequence's first n tokens (Error if the session no longer knows them).
  void truncate(int n);
  // Switches to another layer path; the sequence restarts.
  void set_path(LayerPath path);
  void set_observer(ForwardObserver* observer) { observer_ = observer; }
  // With a cache, a prefill reuses the cached baseline run of the whole sequence so far for the
  // positions this path shares with the cache's base path (see engine/prefix_cache.h), wherever
  // the sequence stands: a first prefill, one after truncate(), a continuation. A single-token
  // decode on a path that departs from the base only uses what is cached already (its
  // generation may have left the baseline's, and computing the baseline as well would cost
  // more than it saves).
  void set_prefix_cache(PrefixCache* cache) { prefix_cache_ = cache; }

  const KvCache& kv_cache() const { return cache_; }
  // Layer evaluations run by this session: path positions x tokens.
  int64_t layer_evals() const { return layer_evals_; }
  // Tokens fed through the path so far (each costs path().size() layer evaluations without
  // prefix reuse).
  int64_t tokens_run() const { return tokens_run_; }

  // Feeds tokens at positions n_past.. and advances n_past. Returns the logits of the last
  // token ([n_vocab]), or of every token ([T, n_vocab] row-major) when all_logits is set.
  // The span stays valid until the next call. Throws Error on a bad token id or a full context.
  std::span<const float> prefill(std::span<const int32_t> tokens, bool all_logits = false);
  // Feeds one generated token: prefill() of it, always on the fast matrix-vector kernels.
  std::span<const float> decode(int32_t token);

  // Batch-invariant prefill (off by default): every prefill, of any number of tokens, runs the
  // GEMM kernels (kernels::matmul's batch_invariant), so the logits and KV of a position are bit
  // for bit the same whether its tokens came in one prefill or several (a context, then a
  // continuation of 1..3 tokens). For log-likelihood scoring (`reprise eval`, serve's echo);
  // decode() keeps the matrix-vector kernels. Costs the GEMM's panel work on prefills of fewer
  // than kernels::kGemmMinTokens tokens.
  void set_batch_invariant(bool on) { batch_invariant_ = on; }
  bool batch_invariant() const { return batch_invariant_; }

  // Continues a forward pass from a residual stream instead of token embeddings: x is the
  // stream [T, n_embd] entering path position first_slot (e.g. cached at a layer boundary of
  // another path that shares the first positions). Slots before first_slot are not run, so
  // their KV entries for these positions are not written (and the session no longer knows its
  // tokens, so later prefills skip the prefix cache until reset). Returns logits like
  // prefill().
  std::span<const float> prefill_from_residual(int first_slot, std::span<const float> x,
                                               bool all_logits = false);

  // The forward pass's two ends as public steps, so diagnostics (analyze's logit lens) use the
  // model's own rules instead of re-implementing them:
  // embed(): the input rows of `tokens`, [T, n_embd] row-major into x (the architecture's
  // embedding scale applied, e.g. Gemma's sqrt(n_embd)). Throws Error on a bad token id.
  void embed(std::span<const int32_t> tokens, float* x) const;
  // logits_from_residual(): the final norm, output head and logit soft-cap applied to a residual
  // stream x [T, n_embd], written to logits [T, n_vocab]; the same kernels as prefill's last step,
  // so the stream after the last path position gives prefill's logits bit for bit. Touches no KV.
  void logits_from_residual(std::span<const float> x, std::span<float> logits);

  // Bytes allocated for the KV cache and scratch buffers.
  uint64_t state_bytes() const;
  // The model's packed weights this session shares (nullptr when REPRISE_PACK=0); describe()
  // says what they hold.
  const PackedWeights* packed_weights() const { return packed_.get(); }

 private:
  // The prefill through the prefix cache; an empty span when the cache cannot serve it.
  std::span<const float> prefill_cached(std::span<const int32_t> tokens, bool all_logits);
  std::span<const float> run_residual(int first_slot, std::span<const float> x, bool all_logits);
  std::span<const float> run(int64_t n_tokens, int first_slot, bool all_logits,
                             const std::function<void(int64_t start, int64_t T)>& load_input);
  void forward_chunk(int64_t T, int first_slot, bool all_logits, float* logits_out);
  void run_block(int slot, float* x, int64_t T, int pos0);
  // run_block's two halves: the attention sublayer (x += alpha * attention) and the FFN one.
  void attention_sublayer(int slot, float* x, int64_t T, int pos0);
  void ffn_sublayer(int layer, float* x, int64_t T, float alpha);
  // embed() without the id check, for ids already checked.
  void embed_rows(std::span<const int32_t> tokens, float* x) const;
  // truncate() of a hybrid model: restore or recompute the recurrent state at n.
  void rewind_recurrent(int n);
  // Final norm (into h_), the observer's final_norm hook if `observe`, output head, soft-cap.
  void output_head(const float* x, int64_t n, float* logits, bool observe);
  // Whether this prefill's matmuls are batch-invariant (set_batch_invariant, not in decode()).
  bool gemm_only() const { return batch_invariant_ && !decoding_; }
  // Whether a matmul over T tokens runs the GEMM kernels (kernels::matmul's rule), the ones that
  // read packed weights.
  bool runs_gemm(int64_t T) const { return T >= kernels::kGemmMinTokens || gemm_only(); }
  // Packs the model's weights (once per model) before a prefill of T tokens that runs the GEMM
  // kernels, if this session asked for packing.
  void pack_before(int64_t T);
  // kernels::matmul with this prefill's batch invariance and w's packed form if there is one.
  void matmul(const TensorView& w, const float* x, int64_t T, float* y);

  const Model& model_;
  LayerPath path_;
  int n_batch_;
  uint64_t max_kv_bytes_ = 0;
  ThreadPool pool_;
  KvCache cache_;
  RopeScaling rope_;  // chosen once from the context size (HParams::rope_scaling)
  int n_past_ = 0;
  std::vector<int32_t> tokens_;  // the sequence's tokens (tokens_.size() == n_past_ when known)
  bool tokens_known_ = true;
  ForwardObserver* observer_ = nullptr;
  PrefixCache* prefix_cache_ = nullptr;
  bool batch_invariant_ = false;  // set_batch_invariant()
  bool decoding_ = false;         // inside decode(): the matrix-vector kernels whatever the above
  int64_t layer_evals_ = 0;
  int64_t tokens_run_ = 0;
  std::shared_ptr<PackedWeights> packed_;  // shared by the model's sessions
  bool pack_ = false;                      // SessionOptions::pack_weights

  // Scratch, each sized for n_batch tokens.
  std::vector<float> x_;       // [T, n_embd] residual stream
  std::vector<float> h_;       // [T, n_embd] normed input
  std::vector<float> q_;       // [T, q_dim]
  std::vector<float> k_;       // [T, kv_dim]
  std::vector<float> v_;       // [T, kv_dim]
  std::vector<float> ctx_;     // [T, q_dim]
  std::vector<float> gate_;    // [T, n_ff]
  std::vector<float> up_;      // [T, n_ff]
  MoeScratch moe_;             // router and expert buffers of MoE blocks
  std::vector<float> out_;     // [T, n_embd] block output before the residual add
  std::vector<float> logits_;  // [T or 1, n_vocab]

  // Hybrid models (HParams::hybrid()): each linear-attention path position's recurrent state,
  // the DeltaNet buffers, and the state at the last rewind point (see truncate()).
  RecurrentState recurrent_;
  DeltaNetScratch delta_;
  struct Snapshot {
    std::vector<int32_t> tokens;  // the sequence it is the state after
    RecurrentState state;
  } snapshot_;
};

}  // namespace reprise
