// Causal attention over the KV cache against a direct float64 evaluation, on every supported ISA
// and both KV element types.
#include <gtest/gtest.h>

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
