#include "engine/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace reprise {

void apply_rope(float* x, int64_t T, int n_heads, const HParams& hp, int pos0) {
  const int d = hp.head_dim, half = d / 2;
  std::vector<double> inv_freq(half);
  for (int i = 0; i < half; ++i) {
    inv_freq[i] = std::pow(static_cast<double>(hp.rope_theta), -2.0 * i / d);
    if (!hp.rope_freq_factors.empty()) inv_freq[i] /= hp.rope_freq_factors[i];
  }
  std::vector<float> cs(half), sn(half);
  for (int64_t t = 0; t < T; ++t) {
    const double pos = static_cast<double>(pos0 + t);
    for (int i = 0; i < half; ++i) {
      cs[i] = static_cast<float>(std::cos(pos * inv_freq[i]));
      sn[i] = static_cast<float>(std::sin(pos * inv_freq[i]));
    }
    for (int h = 0; h < n_heads; ++h) {
      float* v = x + (t * n_heads + h) * d;
      for (int i = 0; i < half; ++i) {
        // Interleaved pairs neighbours; Neox pairs dimension i with i + d/2.
        const int a = hp.rope_style == RopeStyle::Interleaved ? 2 * i : i;
        const int b = hp.rope_style == RopeStyle::Interleaved ? 2 * i + 1 : i + half;
        const float x0 = v[a], x1 = v[b];
        v[a] = x0 * cs[i] - x1 * sn[i];
        v[b] = x0 * sn[i] + x1 * cs[i];
      }
    }
  }
}

void causal_attention(const float* q, const KvCache& cache, int slot, int64_t T, int pos0,
                      const HParams& hp, float* ctx, ThreadPool& pool) {
  const int hd = hp.head_dim, n_head = hp.n_head, group = hp.n_head / hp.n_head_kv;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  pool.parallel_for(T * n_head, [&](int64_t begin, int64_t end) {
    std::vector<float> scores(static_cast<size_t>(pos0 + T));
    for (int64_t job = begin; job < end; ++job) {
      const int64_t t = job / n_head;
      const int h = static_cast<int>(job % n_head), kvh = h / group;
      const float* qh = q + (t * n_head + h) * hd;
      const int n_keys = pos0 + static_cast<int>(t) + 1;
      float max_score = -INFINITY;
      for (int j = 0; j < n_keys; ++j) {
        const float* k = cache.key(slot, j) + kvh * hd;
        float s = 0;
        for (int i = 0; i < hd; ++i) s += qh[i] * k[i];
        scores[j] = s * scale;
        max_score = std::max(max_score, scores[j]);
      }
      double sum = 0;
      for (int j = 0; j < n_keys; ++j) {
        scores[j] = std::exp(scores[j] - max_score);
        sum += scores[j];
      }
      const float inv = static_cast<float>(1.0 / sum);
      float* out = ctx + (t * n_head + h) * hd;
      std::fill(out, out + hd, 0.0f);
      for (int j = 0; j < n_keys; ++j) {
        const float* v = cache.value(slot, j) + kvh * hd;
        const float p = scores[j] * inv;
        for (int i = 0; i < hd; ++i) out[i] += p * v[i];
      }
    }
  });
}

}  // namespace reprise
