#include "engine/moe.h"

#include <algorithm>
#include <cmath>
#include <numeric>

#include "kernels/ops.h"

namespace reprise {
namespace {

// Softmax of one token's router logits, its top k experts and their renormalized weights.
// Ties go to the lower expert id.
// logits and probs may be the same row; order is scratch for n_expert ids.
void route(const float* logits, int n_expert, int k, float* probs, int32_t* order, int32_t* chosen,
           float* weight) {
  const float mx = *std::max_element(logits, logits + n_expert);
  double sum = 0;
  for (int e = 0; e < n_expert; ++e) sum += probs[e] = std::exp(logits[e] - mx);
  for (int e = 0; e < n_expert; ++e) probs[e] = static_cast<float>(probs[e] / sum);
  std::iota(order, order + n_expert, 0);
  std::partial_sort(order, order + k, order + n_expert, [&](int32_t a, int32_t b) {
    return probs[a] > probs[b] || (probs[a] == probs[b] && a < b);
  });
  float top = 0;
  for (int i = 0; i < k; ++i) top += probs[order[i]];
  // llama.cpp clamps the sum at the smallest normal F16 before dividing.
  top = std::max(top, 6.103515625e-5f);
  for (int i = 0; i < k; ++i) {
    chosen[i] = order[i];
    weight[i] = probs[order[i]] / top;
  }
}

}  // namespace

MoeScratch::MoeScratch(const HParams& hp, int64_t n_batch) {
  const auto B = static_cast<size_t>(n_batch);
  probs.resize(B * hp.n_expert);
  order.resize(static_cast<size_t>(hp.n_expert));
  chosen.resize(B * hp.n_expert_used);
  weight.resize(B * hp.n_expert_used);
  tokens.resize(B);
  token_w.resize(B);
  in.resize(B * hp.n_embd);
  down.resize(B * hp.n_embd);
  gate.resize(B * hp.n_ff_exp);
  up.resize(B * hp.n_ff_exp);
}

uint64_t MoeScratch::bytes() const {
  uint64_t n = (order.capacity() + chosen.capacity() + tokens.capacity()) * sizeof(int32_t);
  for (const auto* v : {&probs, &weight, &token_w, &in, &down, &gate, &up})
    n += v->capacity() * sizeof(float);
  return n;
}

void moe_ffn(const HParams& hp, const BlockWeights& b, const float* h, int64_t T, float* out,
             MoeScratch& s, ThreadPool& pool, bool batch_invariant) {
  const int E = hp.n_expert, k = hp.n_expert_used, d = hp.n_embd;
  // Router logits go to `probs`, which route() then overwrites row by row with the softmax.
  kernels::matmul(b.router, h, T, s.probs.data(), pool, batch_invariant);
  for (int64_t t = 0; t < T; ++t)
    route(&s.probs[t * E], E, k, &s.probs[t * E], s.order.data(), &s.chosen[t * k],
          &s.weight[t * k]);

  std::fill(out, out + T * d, 0.0f);
  for (int e = 0; e < E; ++e) {
    int64_t n = 0;  // gather the tokens routed to expert e
    for (int64_t t = 0; t < T; ++t)
      for (int i = 0; i < k; ++i)
        if (s.chosen[t * k + i] == e) {
          s.tokens[n] = static_cast<int32_t>(t);
          s.token_w[n] = s.weight[t * k + i];
          std::copy(h + t * d, h + (t + 1) * d, &s.in[n * d]);
          ++n;
        }
    if (n == 0) continue;  // an expert no token chose is never read
    const ExpertWeights& x = b.experts[static_cast<size_t>(e)];
    kernels::matmul(x.w_gate, s.in.data(), n, s.gate.data(), pool, batch_invariant);
    kernels::matmul(x.w_up, s.in.data(), n, s.up.data(), pool, batch_invariant);
    kernels::swiglu(s.gate.data(), s.up.data(), n * hp.n_ff_exp);
    kernels::matmul(x.w_down, s.gate.data(), n, s.down.data(), pool, batch_invariant);
    for (int64_t r = 0; r < n; ++r) {
      float* o = out + static_cast<int64_t>(s.tokens[r]) * d;
      const float* y = &s.down[r * d];
      for (int j = 0; j < d; ++j) o[j] += s.token_w[r] * y[j];
    }
  }
}

}  // namespace reprise
