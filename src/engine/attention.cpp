#include "engine/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/isa_kernels.h"

namespace reprise {
namespace {

// cos/sin of every (position, frequency) pair a call needs. Every layer of a forward chunk
// rotates the same positions, so the table is kept per thread and rebuilt only when the
// positions or the rope parameters change.
struct RopeTable {
  int pos0 = -1;
  int64_t T = 0;
  int head_dim = 0;
  float theta = 0;
  std::vector<float> factors;
  std::vector<float> cs, sn;  // [T, head_dim / 2]

  void ensure(const HParams& hp, int p0, int64_t n) {
    if (p0 == pos0 && n <= T && hp.head_dim == head_dim && hp.rope_theta == theta &&
        hp.rope_freq_factors == factors)
      return;
    const int d = hp.head_dim, half = d / 2;
    std::vector<double> inv_freq(half);
    for (int i = 0; i < half; ++i) {
      inv_freq[i] = std::pow(static_cast<double>(hp.rope_theta), -2.0 * i / d);
      if (!hp.rope_freq_factors.empty()) inv_freq[i] /= hp.rope_freq_factors[i];
    }
    cs.resize(static_cast<size_t>(n) * half);
    sn.resize(static_cast<size_t>(n) * half);
    for (int64_t t = 0; t < n; ++t) {
      const double pos = static_cast<double>(p0 + t);
      for (int i = 0; i < half; ++i) {
        cs[t * half + i] = static_cast<float>(std::cos(pos * inv_freq[i]));
        sn[t * half + i] = static_cast<float>(std::sin(pos * inv_freq[i]));
      }
    }
    pos0 = p0;
    T = n;
    head_dim = d;
    theta = hp.rope_theta;
    factors = hp.rope_freq_factors;
  }
};

}  // namespace

void apply_rope(float* x, int64_t T, int n_heads, const HParams& hp, int pos0) {
  thread_local RopeTable table;
  table.ensure(hp, pos0, T);
  const int d = hp.head_dim, half = d / 2;
  const bool interleaved = hp.rope_style == RopeStyle::Interleaved;
  for (int64_t t = 0; t < T; ++t) {
    const float* cs = &table.cs[t * half];
    const float* sn = &table.sn[t * half];
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + (t * n_heads + h) * d;
      for (int i = 0; i < half; ++i) {
        // Interleaved pairs neighbours; Neox pairs dimension i with i + d/2.
        const int a = interleaved ? 2 * i : i;
        const int b = interleaved ? 2 * i + 1 : i + half;
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * cs[i] - x1 * sn[i];
        v[b] = x0 * sn[i] + x1 * cs[i];
      }
    }
  }
}

void causal_attention(const float* q, const KvCache& cache, int slot, int64_t T, int pos0,
                      const HParams& hp, float* ctx, ThreadPool& pool) {
  const kernels::IsaKernels& k = kernels::active_kernels();
  const int hd = hp.head_dim, n_head = hp.n_head, group = hp.n_head / hp.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const auto elem = cache.type() == KvType::F16 ? kernels::KvElem::F16 : kernels::KvElem::F32;
  const auto* keys = static_cast<const std::byte*>(cache.key_data(slot, 0));
  const auto* values = static_cast<const std::byte*>(cache.value_data(slot, 0));
  const size_t head_bytes = static_cast<size_t>(hd) * cache.elem_bytes();
  // Jobs run head-major (job = h * T + t) so that each thread's contiguous share holds whole
  // heads: with a causal mask, later tokens cost more, and a token-major split would give the
  // last thread most of the work. Each job keeps one row of scores, never a [T, T] matrix.
  pool.parallel_for(T * n_head, [&](int64_t begin, int64_t end) {
    thread_local std::vector<float> scores;
    scores.resize(static_cast<size_t>(pos0 + T));
    for (int64_t job = begin; job < end; ++job) {
      const int h = static_cast<int>(job / T), kvh = h / group;
      const int64_t t = job % T;
      const float* qh = q + (t * n_head + h) * hd;
      const int64_t n_keys = pos0 + t + 1;
      k.attn_scores(qh, keys + kvh * head_bytes, elem, cache.kv_dim(), n_keys, hd, scale,
                    scores.data());
      const float inv = 1.0f / k.softmax_exp(scores.data(), n_keys);
      float* out = ctx + (t * n_head + h) * hd;
      k.attn_values(scores.data(), values + kvh * head_bytes, elem, cache.kv_dim(), n_keys, hd,
                    out);
      for (int i = 0; i < hd; ++i) out[i] *= inv;
    }
  });
}

}  // namespace reprise
