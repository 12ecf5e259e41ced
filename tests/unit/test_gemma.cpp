// Gemma 2/3 metadata rules (which layers slide, their rope base, soft-caps) and the sliding
// window itself, on synth files. The logits are checked against llama.cpp in
// tests/model/test_golden.cpp (fixtures gemma3-tiny, gemma2-tiny).
#include <gtest/gtest.h>

#include <cmath>

#include "engine/session.h"
#include "kernels/ops.h"
#include "model/model.h"
#include "support/logits.h"
#include "support/synth_dir_test.h"
#include "synth/synth.h"
#include "util/error.h"

namespace reprise {
namespace {

class Gemma : public test::SynthDirTest {
 protected:
  static synth::SynthShape tiny(const std::string& name) { return *synth::find_shape(name); }
};

std::vector<int> windows(const HParams& hp) {
  std::vector<int> w;
  for (int l = 0; l < hp.n_layer; ++l) w.push_back(hp.layer_attn(l).window);
  return w;
}

// llama.cpp 0c1e570 (llama_hparams::set_swa_pattern): with period n, layer l slides unless
// l % n == n - 1; gemma3's period without the key is 6.
TEST_F(Gemma, Gemma3DefaultPatternIsFiveSlidingThenOneGlobal) {
  auto s = tiny("gemma3-tiny");
  s.swa_period = 0;  // key left out
  s.n_layer = 8;
  auto m = write_and_load(s);
  const HParams& hp = m->hparams();
  EXPECT_EQ(windows(hp), (std::vector<int>{4, 4, 4, 4, 4, 0, 4, 4}));
  EXPECT_EQ(hp.layer_attn(0).rope_theta, 1e4f);  // rope.freq_base_swa
  EXPECT_EQ(hp.layer_attn(5).rope_theta, 1e6f);  // rope.freq_base
  EXPECT_TRUE(hp.qk_norm && hp.post_norms);
  EXPECT_EQ(hp.ffn_act, FfnAct::GeluTanh);
  EXPECT_FLOAT_EQ(hp.embd_scale, 8.0f);      // sqrt(64)
  EXPECT_FLOAT_EQ(hp.score_scale(), 0.25f);  // 1 / sqrt(head_dim 16)
  EXPECT_EQ(hp.attn_softcap, 0.0f);
  EXPECT_EQ(hp.final_softcap, 0.0f);
}

TEST_F(Gemma, Gemma3PeriodFromTheFile) {
  auto m = write_and_load(tiny("gemma3-tiny"));  // period 3
  EXPECT_EQ(windows(m->hparams()), (std::vector<int>{4, 4, 0, 4}));
}

TEST_F(Gemma, Gemma3WithoutAWindowHasOnlyGlobalLayers) {
  auto s = tiny("gemma3-tiny");
  s.sliding_window = 0;
  auto m = write_and_load(s);
  EXPECT_EQ(windows(m->hparams()), (std::vector<int>{0, 0, 0, 0}));
  EXPECT_EQ(m->hparams().layer_attn(0).rope_theta, 1e6f);
}

// gemma2: even layers slide; soft-caps default to 50 / 30 when the file names none, and the SWA
// rope base defaults to the global one.
TEST_F(Gemma, Gemma2Defaults) {
  auto s = tiny("gemma2-tiny");
  s.attn_softcap = s.final_softcap = 0;
  s.n_layer = 5;
  auto m = write_and_load(s);
  const HParams& hp = m->hparams();
  EXPECT_EQ(windows(hp), (std::vector<int>{4, 0, 4, 0, 4}));
  EXPECT_EQ(hp.layer_attn(0).rope_theta, 1e4f);
  EXPECT_EQ(hp.attn_softcap, 50.0f);
  EXPECT_EQ(hp.final_softcap, 30.0f);
  EXPECT_FALSE(hp.qk_norm);
  EXPECT_TRUE(hp.tied_output);
}

TEST_F(Gemma, FinalSoftcapBoundsTheLogits) {
  auto m = write_and_load(tiny("gemma2-tiny"));  // final cap 3
  Session s(*m, LayerPath::identity(m->hparams().n_layer), SessionOptions{.n_ctx = 32});
  auto logits = s.prefill(std::vector<int32_t>{5, 6, 7});
  float hi = 0;
  for (float x : logits) hi = std::max(hi, std::fabs(x));
  EXPECT_LT(hi, 3.0f);
  EXPECT_GT(hi, 1.0f);  // the cap is doing something: raw logits of this file reach beyond 3
}

// With every layer sliding (period 0) over a window of 4, position p sees positions p-3..p of the
// layer below only, so through 2 layers position p depends on tokens p-6..p and nothing earlier.
TEST_F(Gemma, SlidingWindowHidesTokensBeyondIt) {
  auto s = tiny("gemma3-tiny");
  s.n_layer = 2;
  s.swa_period = 0;
  auto m = write_and_load(s);
  auto run = [&](int32_t first) {
    std::vector<int32_t> toks = {first, 11, 12, 13, 14, 15, 16, 17, 18, 19};
    Session sess(*m, LayerPath::identity(2), SessionOptions{.n_ctx = 32});
    auto l = sess.prefill(toks, /*all_logits=*/true);
    return std::vector<float>(l.begin(), l.end());
  };
  const auto a = run(3), b = run(900);
  const size_t V = m->hparams().n_vocab;
  auto row_diff = [&](size_t r) { return test::row_max_abs_diff(a, b, V, r); };
  EXPECT_GT(row_diff(6), 1e-4f);  // token 0 is within 2 x (4 - 1) positions of position 6
  for (size_t r = 7; r < 10; ++r) EXPECT_EQ(row_diff(r), 0.0f) << "position " << r;
}

// The same path position count, different physical layers: a repeated global layer stays global.
TEST_F(Gemma, RepeatedLayerKeepsItsKind) {
  auto s = tiny("gemma3-tiny");  // layers 0, 1, 3 slide; 2 is global
  auto m = write_and_load(s);
  std::vector<int32_t> toks(12);
  for (int i = 0; i < 12; ++i) toks[i] = 20 + i;
  // Path 2,2: both positions are global, so changing token 0 changes the last logits; path 0,0
  // (window 4, two layers) cannot see it from position 11.
  auto last_diff = [&](LayerPath p) {
    auto run = [&](int32_t first) {
      auto t = toks;
      t[0] = first;
      Session sess(*m, p, SessionOptions{.n_ctx = 32});
      auto l = sess.prefill(t);
      return std::vector<float>(l.begin(), l.end());
    };
    auto a = run(3), b = run(900);
    float d = 0;
    for (size_t i = 0; i < a.size(); ++i) d = std::max(d, std::fabs(a[i] - b[i]));
    return d;
  };
  EXPECT_GT(last_diff(LayerPath{{2, 2}}), 1e-4f);
  EXPECT_EQ(last_diff(LayerPath{{0, 0}}), 0.0f);
}

// The published configs (google/gemma-3-1b-it, google/gemma-2-2b-it config.json).
TEST(GemmaShapes, KnowsTheRealShapes) {
  auto g3 = synth::find_shape("gemma3-1b");
  ASSERT_TRUE(g3);
  EXPECT_EQ(g3->n_embd, 1152);
  EXPECT_EQ(g3->n_layer, 26);
  EXPECT_EQ(g3->head_dim, 256);
  EXPECT_EQ(g3->n_vocab, 262144);
  EXPECT_EQ(g3->sliding_window, 512);
  auto g2 = synth::find_shape("gemma2-2b");
  ASSERT_TRUE(g2);
  EXPECT_EQ(g2->n_embd, 2304);
  EXPECT_EQ(g2->n_ff, 9216);
  EXPECT_EQ(g2->sliding_window, 4096);
  EXPECT_EQ(g2->attn_softcap, 50.0f);
  EXPECT_EQ(g2->final_softcap, 30.0f);
}

TEST(GemmaKernels, GegluMatchesTheFormula) {
  std::vector<float> g = {-3.0f, -0.5f, 0.0f, 0.7f, 2.5f}, u = {1.0f, 2.0f, 3.0f, -1.0f, 0.5f};
  std::vector<float> want;
  for (size_t i = 0; i < g.size(); ++i) {
    const double x = g[i];
    want.push_back(static_cast<float>(
        0.5 * x * (1 + std::tanh(std::sqrt(2 / M_PI) * (x + 0.044715 * x * x * x))) * u[i]));
  }
  kernels::geglu(g.data(), u.data(), static_cast<int64_t>(g.size()));
  for (size_t i = 0; i < g.size(); ++i) EXPECT_NEAR(g[i], want[i], 1e-6f) << i;
}

}  // namespace
}  // namespace reprise
