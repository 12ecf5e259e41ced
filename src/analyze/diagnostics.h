// Per-layer diagnostics of a model's residual stream over a set of probe sequences: how much each
// layer changes the stream, what the stream would predict if decoded early (logit lens), and how
// layers interact (removal, series dependence, swapping adjacent layers). See docs/analyze.md for
// the exact definitions.
//
// Notation: h_0 is the token embedding, h_{l+1} = h_l + Δ_l(h_l) the stream after physical layer
// l on the plain path, N layers. Δ_l(x) is layer l applied to the stream x (all positions of the
// sequence, since attention mixes them), minus x.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "model/model.h"

namespace reprise::analyze {

// One probe sequence: token ids (BOS included when the vocabulary adds one).
struct ProbeItem {
  std::string id;
  std::vector<int32_t> tokens;
};

struct LayerStats {
  int layer = 0;
  // Mean over tokens of cos(h_l, h_{l+1}); 1 for a layer that is exactly the identity.
  double cos_in_out = 0;
  // Mean over tokens of ‖Δ_l‖ / ‖h_l‖; 0 for the identity.
  double rel_update = 0;
  // Logit lens on h_{l+1}: mean KL(p_final ‖ p_lens) in nats and the fraction of tokens whose
  // argmax equals the final argmax. The last layer gives 0 and 1 by construction.
  double lens_kl = 0;
  double lens_top1 = 0;
  // Mean KL(p_final ‖ p_without_l): the path with layer l removed.
  double skip_kl = 0;
  // Series dependence of layer l+1 on layer l (last layer: NaN):
  //   sqrt(Σ‖Δ_{l+1}(h_l+Δ_l) − Δ_{l+1}(h_l)‖²) / sqrt(Σ‖Δ_{l+1}(h_l+Δ_l)‖²)   (sums over tokens)
  // 0 = layer l+1 does the same with or without l (parallel), 1 = it only reacts to l's update.
  // 0 when both updates are zero.
  double series = 0;
  // Commutativity of layers l, l+1 (last layer: NaN): the stream after the swapped pair
  // (l+1 then l) against h_{l+2}, relative to the pair's joint update:
  //   sqrt(Σ‖swap(h_l) − h_{l+2}‖²) / sqrt(Σ‖h_{l+2} − h_l‖²);   0 when both are zero.
  double commute = 0;
  // Mean KL(p_final ‖ p_swapped): the output change of the path with l and l+1 swapped.
  double commute_kl = 0;
};

struct DiagnosticsOptions {
  int n_threads = 0;
  bool interventions = true;  // skip / series / swap runs (the cheap prediction needs none)
  // Called after each probe item with the number of items finished so far.
  std::function<void(size_t done)> progress;
};

struct Diagnostics {
  int n_layer = 0;
  size_t n_items = 0;
  int64_t n_tokens = 0;
  std::vector<LayerStats> layers;  // [n_layer]
  // drift[i][j] for 0 <= i < j <= N: mean over tokens of ‖h_j − h_i‖ / ‖h_j‖ (0 elsewhere).
  std::vector<std::vector<double>> drift;
  // sim[i][j]: mean over tokens of cos(h_i, h_j), [N+1][N+1].
  std::vector<std::vector<double>> sim;
  double seconds_plain = 0;          // the plain pass + the statistics the predictions read
  double seconds_lens = 0;           // the logit lens (N output heads per token)
  double seconds_interventions = 0;  // skip / swap runs
};

// Runs every probe item along the plain path (and, with interventions, the modified paths).
// Throws Error if there are no items or an item is longer than the model's context.
Diagnostics run_diagnostics(const Model& model, const std::vector<ProbeItem>& items,
                            const DiagnosticsOptions& opts = {});

// KL(p ‖ q) in nats between softmax(p_logits) and softmax(q_logits), both [n].
double kl_from_logits(const float* p_logits, const float* q_logits, int64_t n);

}  // namespace reprise::analyze
