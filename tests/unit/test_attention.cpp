// Causal attention over the KV cache against a direct float64 evaluation, on every supported ISA
// and both KV element types.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cmath>
#include <random>
#include <vector>

#include "engine/attention.h"
#include "engine/kv_cache.h"
#include "kernels/dispatch.h"
#include "kernels/quant.h"

namespace reprise {
namespace {

struct Case {
  kernels::Isa isa;
  KvType kv;
};

class AttentionTest : public ::testing::TestWithParam<Case> {};

TEST_P(AttentionTest, MatchesDirectSoftmax) {
  const kernels::Isa saved = kernels::active_isa();
  kernels::set_isa(GetParam().isa);
  HParams hp;
  hp.n_head = 6;
  hp.n_head_kv = 2;
  hp.head_dim = 16;
  const int kv_dim = hp.kv_dim(), q_dim = hp.q_dim();
  const int pos0 = 5, T = 7, slot = 1;  // a prefill chunk after 5 cached tokens, in slot 1
  KvCache cache(2, 16, kv_dim, GetParam().kv);
  std::mt19937 rng(3);
  std::normal_distribution<float> nd;
  std::vector<float> keys((pos0 + T) * kv_dim), values((pos0 + T) * kv_dim), q(T * q_dim);
  for (auto* v : {&keys, &values, &q})
    for (auto& x : *v) x = nd(rng);
  for (int p = 0; p < pos0 + T; ++p) cache.store(slot, p, &keys[p * kv_dim], &values[p * kv_dim]);
  // What the cache holds (F16 rounds), so the reference sees the same keys and values.
  auto held = [&](float x) {
    return GetParam().kv == KvType::F16 ? kernels::fp16_to_fp32(kernels::fp32_to_fp16(x)) : x;
  };
  std::vector<float> ctx(T * q_dim);
  ThreadPool pool(2);
  causal_attention(q.data(), cache, slot, T, pos0, hp, hp.layer_attn(0), ctx.data(), pool);
  const int group = hp.n_head / hp.n_head_kv;
  for (int t = 0; t < T; ++t) {
    for (int h = 0; h < hp.n_head; ++h) {
      const int kvh = h / group, n = pos0 + t + 1;
      std::vector<double> s(n);
      double m = -1e300, sum = 0;
      for (int j = 0; j < n; ++j) {
        double d = 0;
        for (int i = 0; i < hp.head_dim; ++i)
          d += double(q[(t * hp.n_head + h) * hp.head_dim + i]) *
               held(keys[j * kv_dim + kvh * hp.head_dim + i]);
        s[j] = d / std::sqrt(double(hp.head_dim));
        m = std::max(m, s[j]);
      }
      for (auto& x : s) sum += (x = std::exp(x - m));
      for (int i = 0; i < hp.head_dim; ++i) {
        double want = 0;
        for (int j = 0; j < n; ++j)
          want += s[j] / sum * held(values[j * kv_dim + kvh * hp.head_dim + i]);
        EXPECT_NEAR(ctx[(t * hp.n_head + h) * hp.head_dim + i], want, 1e-5)
            << "t " << t << " head " << h << " dim " << i;
      }
    }
  }
  kernels::set_isa(saved);
}

// A random KV cache of n_pos positions in slot 1 and random queries, for the tiled-attention
// checks below: shapes that cross the 16-row tiles at odd places, GQA, head sizes with and
// without a remainder of 8, sliding windows and soft-capping.
struct Shape {
  int n_head, n_head_kv, head_dim;
  int pos0, T;
  int window;
  float softcap;
};

struct Filled {
  HParams hp;
  KvCache cache;
  std::vector<float> keys, values, q;
};

Filled fill(const Shape& sh, KvType kv, uint32_t seed) {
  HParams hp;
  hp.n_head = sh.n_head;
  hp.n_head_kv = sh.n_head_kv;
  hp.head_dim = sh.head_dim;
  hp.attn_softcap = sh.softcap;
  const int kv_dim = hp.kv_dim(), n_pos = sh.pos0 + sh.T;
  Filled f{hp, KvCache(2, n_pos, kv_dim, kv), {}, {}, {}};
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd;
  f.keys.resize(static_cast<size_t>(n_pos) * kv_dim);
  f.values.resize(f.keys.size());
  f.q.resize(static_cast<size_t>(sh.T) * hp.q_dim());
  for (auto* v : {&f.keys, &f.values, &f.q})
    for (auto& x : *v) x = 2.0f * nd(rng);
  for (int p = 0; p < n_pos; ++p) f.cache.store(1, p, &f.keys[p * kv_dim], &f.values[p * kv_dim]);
  return f;
}

LayerAttn window_layer(const HParams& hp, int window) {
  LayerAttn l = hp.layer_attn(0);
  l.window = window;
  return l;
}

const Shape kShapes[] = {
    {6, 2, 16, 5, 7, 0, 0},      // one partial tile after 5 cached tokens
    {4, 2, 64, 0, 37, 0, 0},     // from position 0, 2 full tiles + 5 rows
    {3, 1, 20, 9, 33, 0, 0},     // head size 20 (8 + 8 + 4): the tails
    {4, 4, 64, 3, 50, 11, 0},    // sliding window shorter than a tile
    {2, 1, 32, 40, 21, 24, 0},   // window longer than a tile, starting mid-cache
    {4, 2, 16, 2, 19, 0, 4.0f},  // soft-capped scores (gemma 2)
};

// Tiled prefill vs a direct float64 evaluation: within the float rounding of the scores and sums.
TEST_P(AttentionTest, TiledMatchesDirectSoftmaxWithWindowsAndCaps) {
  const kernels::Isa saved = kernels::active_isa();
  kernels::set_isa(GetParam().isa);
  auto held = [&](float x) {
    return GetParam().kv == KvType::F16 ? kernels::fp16_to_fp32(kernels::fp32_to_fp16(x)) : x;
  };
  ThreadPool pool(2);
  for (const Shape& sh : kShapes) {
    Filled f = fill(sh, GetParam().kv, 11);
    const HParams& hp = f.hp;
    const int kv_dim = hp.kv_dim(), hd = hp.head_dim, group = hp.n_head / hp.n_head_kv;
    std::vector<float> ctx(f.q.size());
    causal_attention(f.q.data(), f.cache, 1, sh.T, sh.pos0, hp, window_layer(hp, sh.window),
                     ctx.data(), pool);
    for (int t = 0; t < sh.T; ++t) {
      const int last = sh.pos0 + t, first = sh.window > 0 ? std::max(0, last - sh.window + 1) : 0;
      for (int h = 0; h < hp.n_head; ++h) {
        const int kvh = h / group;
        std::vector<double> s;
        double m = -1e300, sum = 0, vmax = 0;
        for (int j = first; j <= last; ++j) {
          double d = 0;
          for (int i = 0; i < hd; ++i)
            d +=
                double(f.q[(t * hp.n_head + h) * hd + i]) * held(f.keys[j * kv_dim + kvh * hd + i]);
          d /= std::sqrt(double(hd));
          if (sh.softcap > 0) d = sh.softcap * std::tanh(d / sh.softcap);
          s.push_back(d);
          m = std::max(m, d);
        }
        for (auto& x : s) sum += (x = std::exp(x - m));
        for (int i = 0; i < hd; ++i) {
          double want = 0;
          for (int j = first; j <= last; ++j) {
            const double v = held(f.values[j * kv_dim + kvh * hd + i]);
            want += s[j - first] / sum * v;
            vmax = std::max(vmax, std::abs(v));
          }
          // Float scores of |s| <~ 30 carry ~3e-6 absolute error each, which moves every
          // probability by that relative amount: 1e-5 of the largest value bounds the sum.
          ASSERT_NEAR(ctx[(t * hp.n_head + h) * hd + i], want, 1e-5 * vmax)
              << "shape hd " << hd << " T " << sh.T << " window " << sh.window << " t " << t
              << " head " << h << " dim " << i;
        }
      }
    }
  }
  kernels::set_isa(saved);
}

// Batch invariance: a row's context is bit for bit the same whether its tokens are attended in
// one prefill or split over several (what Session::set_batch_invariant relies on for attention),
// and the same as the one-row path decode takes.
TEST_P(AttentionTest, RowsAreBitIdenticalHoweverThePrefillIsSplit) {
  const kernels::Isa saved = kernels::active_isa();
  kernels::set_isa(GetParam().isa);
  ThreadPool pool(2);
  for (const Shape& sh : kShapes) {
    Filled f = fill(sh, GetParam().kv, 5);
    const HParams& hp = f.hp;
    const LayerAttn layer = window_layer(hp, sh.window);
    const int64_t q_dim = hp.q_dim();
    std::vector<float> whole(f.q.size()), split(f.q.size(), -1.0f), rows(f.q.size(), -1.0f);
    causal_attention(f.q.data(), f.cache, 1, sh.T, sh.pos0, hp, layer, whole.data(), pool);
    // Splits at 1, 3 and 17 rows: tiles then start at other rows than in the whole prefill.
    for (int t0 = 0, i = 0; t0 < sh.T; ++i) {
      const int n = std::min(sh.T - t0, std::array<int, 3>{1, 3, 17}[i % 3]);
      causal_attention(&f.q[t0 * q_dim], f.cache, 1, n, sh.pos0 + t0, hp, layer, &split[t0 * q_dim],
                       pool);
      t0 += n;
    }
    for (int t = 0; t < sh.T; ++t)
      causal_attention(&f.q[t * q_dim], f.cache, 1, 1, sh.pos0 + t, hp, layer, &rows[t * q_dim],
                       pool);
    for (size_t i = 0; i < whole.size(); ++i) {
      ASSERT_EQ(std::bit_cast<uint32_t>(whole[i]), std::bit_cast<uint32_t>(split[i]))
          << "hd " << hp.head_dim << " T " << sh.T << " element " << i;
      ASSERT_EQ(std::bit_cast<uint32_t>(whole[i]), std::bit_cast<uint32_t>(rows[i]))
          << "hd " << hp.head_dim << " T " << sh.T << " element " << i;
    }
  }
  kernels::set_isa(saved);
}

std::vector<Case> cases() {
  std::vector<Case> out;
  for (kernels::Isa isa : kernels::supported_isas())
    for (KvType kv : {KvType::F32, KvType::F16}) out.push_back({isa, kv});
  return out;
}

INSTANTIATE_TEST_SUITE_P(IsasAndKvTypes, AttentionTest, ::testing::ValuesIn(cases()),
                         [](const auto& info) {
                           return std::string(kernels::isa_name(info.param.isa)) + "_" +
                                  std::string(kv_type_name(info.param.kv));
                         });

TEST(KvCache, F16HalvesTheBytesAndParsesNames) {
  KvCache a(3, 8, 32, KvType::F32), b(3, 8, 32, KvType::F16);
  EXPECT_EQ(a.bytes(), 2 * b.bytes());
  EXPECT_EQ(kv_type_from_name("F16"), KvType::F16);
  EXPECT_EQ(kv_type_from_name("f32"), KvType::F32);
  EXPECT_FALSE(kv_type_from_name("q8_0"));
}

}  // namespace
}  // namespace reprise
