// Qwen3.5 hybrids: the Gated DeltaNet (linear-attention) layer, the recurrent state it carries per
// path position, and the output gate of the hybrid's full-attention layers.
//
// Semantics are llama.cpp 0c1e570's (src/models/qwen35.cpp, delta-net-base.cpp, the CPU
// gated_delta_net op). Per token t of a linear-attention layer, from its normed input h:
//   [q k v] = silu(causal_conv(h Wqkv^T))   (a conv of conv_kernel taps over each channel, fed by
//                                             the layer's conv state for the first tokens)
//   q, k    L2-normalised per head (x / sqrt(sum x^2 + eps)), q scaled by 1/sqrt(head_k_dim)
//   beta = sigmoid(h Wbeta^T), g = softplus(h Walpha^T + dt_bias) * a   (a < 0: a decay)
//   per value head: S = exp(g) S;  S += k (beta (v - S^T k))^T;  o = S^T q
//   out = (rmsnorm_head(o) * silu(h Wz^T)) Wout^T
// The recurrence runs token by token (prefill and decode alike), so a position's output does not
// depend on how its prompt was split into prefills.
#pragma once

#include <cstdint>
#include <vector>

#include "engine/layer_path.h"
#include "model/hparams.h"
#include "model/weights.h"
#include "util/thread_pool.h"

namespace reprise {

// The state of every path position that runs a linear-attention layer. Like a KV slot, it
// belongs to the path position, not to the physical layer: a layer the path visits twice keeps
// two states. Positions that run an attention layer have none.
class RecurrentState {
 public:
  RecurrentState() = default;
  RecurrentState(const HParams& hp, const LayerPath& path);

  // The last conv_kernel - 1 inputs of the conv, [conv_kernel - 1, conv_dim] (oldest first).
  float* conv(int slot) { return conv_[static_cast<size_t>(slot)].data(); }
  // The DeltaNet state, [n_v_heads, head_v_dim (j), head_k_dim (i)]: row j of a head is S[:, j].
  float* ssm(int slot) { return ssm_[static_cast<size_t>(slot)].data(); }

  // No path position has a state (not a hybrid, or a path of attention layers only).
  bool empty() const { return bytes() == 0; }
  // Zeroes every state: an empty sequence.
  void clear();
  uint64_t bytes() const;

 private:
  std::vector<std::vector<float>> conv_, ssm_;  // per path position; empty for attention ones
};

// Buffers of one forward chunk of up to n_batch tokens.
struct DeltaNetScratch {
  DeltaNetScratch() = default;
  DeltaNetScratch(const HParams& hp, int n_batch);
  std::vector<float> conv_in;  // [conv_kernel - 1 + T, conv_dim]: the conv state, then h Wqkv^T
  std::vector<float> qkv;      // [T, conv_dim] the conv's output
  std::vector<float> z;        // [T, value_dim] output gate
  std::vector<float> beta;     // [T, n_v_heads]
  std::vector<float> g;        // [T, n_v_heads] log-decay
  std::vector<float> o;        // [T, value_dim]
  std::vector<float> qg;       // [T, 2 q_dim] a gated attention layer's query and gate rows
  std::vector<float> gate;     // [T, q_dim]
  uint64_t bytes() const;
};

// out[T, n_embd] = the linear-attention output for the normed input h[T, n_embd], continuing from
// and updating conv_state and ssm_state (RecurrentState::conv/ssm of the path position).
void delta_net_forward(const HParams& hp, const DeltaNetWeights& w, const float* h, int64_t T,
                       float* conv_state, float* ssm_state, DeltaNetScratch& s, float* out,
                       ThreadPool& pool, bool batch_invariant);

// A gated attention layer's query projection qg[T, n_head * 2 head_dim] holds, per head, the
// query's head_dim values then the gate's: splits it into q[T, n_head * head_dim] and
// gate[T, n_head * head_dim].
void split_query_gate(const float* qg, int64_t T, int n_head, int head_dim, float* q, float* gate);

// x[i] *= sigmoid(gate[i]) for i < n.
void apply_sigmoid_gate(float* x, const float* gate, int64_t n);

}  // namespace reprise
