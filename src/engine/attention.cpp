#include "engine/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/ops.h"

namespace reprise {
namespace {

// cos/sin of every (position, frequency) pair a call needs. Every layer of a forward chunk
// rotates the same positions, so the table is kept per thread and rebuilt only when the
// positions or the rope parameters change.
struct RopeTable {
  int pos0 = -1;
  int64_t T = 0;
  int rot_dims = 0;  // the rotated dimensions of a head (head_dim, or fewer: partial rotary)
  float theta = 0, freq_scale = 0, attn_factor = 0;
  std::vector<float> factors;
  std::vector<int> sections;
  std::vector<float> cs, sn;  // [T, rot_dims / 2], times attn_factor

  bool matches(const HParams& hp, const LayerAttn& l, const RopeScaling& r, int p0,
               int64_t n) const {
    return p0 == pos0 && n <= T && hp.rotary_dims() == rot_dims && l.rope_theta == theta &&
           l.rope_freq_scale == freq_scale && r.attn_factor == attn_factor &&
           std::ranges::equal(r.factors, factors) && hp.rope_sections == sections;
  }

  void build(const HParams& hp, const LayerAttn& l, const RopeScaling& r, int p0, int64_t n) {
    const int d = hp.rotary_dims(), half = d / 2;
    std::vector<double> inv_freq(half);
    for (int i = 0; i < half; ++i) {
      inv_freq[i] = std::pow(static_cast<double>(l.rope_theta), -2.0 * i / d) * l.rope_freq_scale;
      if (!r.factors.empty()) inv_freq[i] /= r.factors[i];
      if (!hp.rope_pair_turns(i)) inv_freq[i] = 0;  // an M-RoPE pair text leaves at position 0
    }
    cs.resize(static_cast<size_t>(n) * half);
    sn.resize(static_cast<size_t>(n) * half);
    // Long-rope's attention factor scales the rotated dimensions of q and k alike (cos and sin
    // times it, as llama.cpp's rope_yarn and transformers' attention_scaling do).
    const double m = r.attn_factor;
    for (int64_t t = 0; t < n; ++t) {
      const double pos = static_cast<double>(p0 + t);
      for (int i = 0; i < half; ++i) {
        cs[t * half + i] = static_cast<float>(std::cos(pos * inv_freq[i]) * m);
        sn[t * half + i] = static_cast<float>(std::sin(pos * inv_freq[i]) * m);
      }
    }
    pos0 = p0;
    T = n;
    rot_dims = d;
    theta = l.rope_theta;
    freq_scale = l.rope_freq_scale;
    attn_factor = r.attn_factor;
    factors.assign(r.factors.begin(), r.factors.end());
    sections = hp.rope_sections;
  }
};

// Sliding-window and global layers alternate with two rope bases, so two tables are kept (the
// one used longest ago is rebuilt on a miss).
const RopeTable& rope_table(const HParams& hp, const LayerAttn& l, const RopeScaling& r, int p0,
                            int64_t n) {
  thread_local RopeTable tables[2];
  thread_local int last = 0;
  for (int i = 0; i < 2; ++i)
    if (tables[i].matches(hp, l, r, p0, n)) return tables[last = i];
  last = 1 - last;
  tables[last].build(hp, l, r, p0, n);
  return tables[last];
}

}  // namespace

void apply_rope(float* x, int64_t T, int n_heads, const HParams& hp, const LayerAttn& layer,
                const RopeScaling& scaling, int pos0) {
  if (!layer.rope) return;
  const RopeTable& table = rope_table(hp, layer, scaling, pos0, T);
  // Only the first rotary_dims() dimensions of a head turn (partial rotary); the rest pass.
  const int d = hp.head_dim, half = hp.rotary_dims() / 2;
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
                      const HParams& hp, const LayerAttn& layer, float* ctx, ThreadPool& pool) {
  const int hd = hp.head_dim, n_head = hp.n_head, group = hp.n_head / hp.n_head_kv;
  const size_t head_bytes = static_cast<size_t>(hd) * cache.elem_bytes();
  const auto* keys = static_cast<const std::byte*>(cache.key_data(slot, 0));
  const auto* values = static_cast<const std::byte*>(cache.value_data(slot, 0));
  const int64_t q_stride = static_cast<int64_t>(n_head) * hd;
  const int64_t tiles = (T + kernels::kAttnTileRows - 1) / kernels::kAttnTileRows;
  // Jobs run head-major (job = h * tiles + tile) so that each thread's contiguous share holds
  // whole heads: with a causal mask, later tokens cost more, and a token-major split would give
  // the last thread most of the work.
  pool.parallel_for(tiles * n_head, [&](int64_t begin, int64_t end) {
    for (int64_t job = begin; job < end; ++job) {
      const int h = static_cast<int>(job / tiles), kvh = h / group;
      const int64_t t0 = (job % tiles) * kernels::kAttnTileRows;
      const int64_t n = std::min<int64_t>(kernels::kAttnTileRows, T - t0);
      const kernels::AttnKv kv{keys + kvh * head_bytes, values + kvh * head_bytes, cache.kv_dim(),
                               cache.type() == KvType::F16};
      kernels::attention(kv, hd, hp.score_scale(), hp.attn_softcap, layer.window,
                         q + t0 * q_stride + h * hd, q_stride, n, pos0 + t0,
                         ctx + t0 * q_stride + h * hd, q_stride);
    }
  });
}

}  // namespace reprise
