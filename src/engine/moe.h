// The mixture-of-experts feed-forward step of a block (qwen3moe, Mixtral-style llama files).
#pragma once

#include <cstdint>
#include <vector>

#include "model/hparams.h"
#include "model/weights.h"
#include "util/thread_pool.h"

namespace reprise {

// Buffers of one MoE step, sized once for n_batch tokens (the forward pass does not allocate).
struct MoeScratch {
  MoeScratch() = default;
  MoeScratch(const HParams& hp, int64_t n_batch);
  uint64_t bytes() const;  // capacity of the buffers

  std::vector<float> probs;     // [T, n_expert] router softmax
  std::vector<int32_t> order;   // [n_expert] expert ids being ranked
  std::vector<int32_t> chosen;  // [T, n_expert_used] expert ids, most probable first
  std::vector<float> weight;    // [T, n_expert_used] their renormalized weights
  std::vector<int32_t> tokens;  // tokens routed to the expert being run
  std::vector<float> token_w;   // their weights for that expert
  std::vector<float> in, down;  // [T, n_embd] gathered input rows, expert output
  std::vector<float> gate, up;  // [T, n_ff_exp]
};

// out[t] = sum over the experts e chosen for token t of weight(t, e) * ffn_e(h[t]), where the
// router picks the n_expert_used experts of highest softmax probability and their weights are
// those probabilities renormalized to sum 1 (llama.cpp 0c1e570's build_moe_ffn with norm_w, as
// it runs qwen3moe and llama). h, out: [T, n_embd]. Each chosen expert runs once over the tokens
// routed to it, so a decode step reads the router and n_expert_used experts only. A token's sum
// runs in ascending expert order, whatever the other tokens of the batch chose.
void moe_ffn(const HParams& hp, const BlockWeights& b, const float* h, int64_t T, float* out,
             MoeScratch& s, ThreadPool& pool, bool batch_invariant);

}  // namespace reprise
