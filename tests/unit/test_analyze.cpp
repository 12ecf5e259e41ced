// reprise analyze: every statistic on constructed models whose answer follows from their weights,
// and the prediction/validation arithmetic on hand-computed cases.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>

#include "analyze/diagnostics.h"
#include "analyze/predict.h"
#include "analyze/report.h"
#include "model/model.h"
#include "support/gguf_builder.h"
#include "util/error.h"

namespace reprise::analyze {
namespace {

constexpr int kD = 8, kFF = 16, kVocab = 16;

struct LayerSpec {
  uint32_t seed = 1;
  bool identity = false;    // attn_output and ffn_down all zero: the block adds exactly 0
  bool read_upper = false;  // both norm gains zero on dims 0..d/2-1: reads only dims d/2..d-1
};

// A llama GGUF with the given layers (F32, two heads of 4). With embed_lower_only the token
// embeddings are zero on dims d/2..d-1.
std::unique_ptr<Model> build(const std::string& name, const std::vector<LayerSpec>& layers,
                             bool embed_lower_only = false) {
  const uint64_t D = kD, F = kFF, V = kVocab;
  auto random = [](std::mt19937& rng, size_t n, float scale) {
    std::normal_distribution<float> dist(0.0f, scale);
    std::vector<float> v(n);
    for (auto& x : v) x = dist(rng);
    return v;
  };
  test::GgufBuilder b;
  b.kv_string("general.architecture", "llama");
  b.kv_u32("llama.context_length", 64);
  b.kv_u32("llama.embedding_length", kD);
  b.kv_u32("llama.block_count", static_cast<uint32_t>(layers.size()));
  b.kv_u32("llama.feed_forward_length", kFF);
  b.kv_u32("llama.attention.head_count", 2);
  b.kv_u32("llama.attention.head_count_kv", 2);
  b.kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-5f);
  std::mt19937 rng(99);
  auto embd = random(rng, D * V, 1.0f);
  if (embed_lower_only)
    for (uint64_t t = 0; t < V; ++t)
      for (uint64_t c = D / 2; c < D; ++c) embd[t * D + c] = 0;
  b.tensor_f32("token_embd.weight", {D, V}, embd);
  b.tensor_f32("output_norm.weight", {D}, std::vector<float>(D, 1.0f));
  b.tensor_f32("output.weight", {D, V}, random(rng, D * V, 0.6f));
  for (size_t l = 0; l < layers.size(); ++l) {
    const LayerSpec& s = layers[l];
    std::mt19937 lr(s.seed);
    auto n = [&](const char* role) { return "blk." + std::to_string(l) + "." + role; };
    std::vector<float> gain(D, 1.0f);
    if (s.read_upper)
      for (uint64_t c = 0; c < D / 2; ++c) gain[c] = 0;
    const float sc = 0.6f;
    b.tensor_f32(n("attn_norm.weight"), {D}, gain);
    b.tensor_f32(n("attn_q.weight"), {D, D}, random(lr, D * D, sc));
    b.tensor_f32(n("attn_k.weight"), {D, D}, random(lr, D * D, sc));
    b.tensor_f32(n("attn_v.weight"), {D, D}, random(lr, D * D, sc));
    auto wo = random(lr, D * D, sc);
    b.tensor_f32(n("ffn_norm.weight"), {D}, gain);
    auto gate = random(lr, D * F, sc), up = random(lr, D * F, sc), down = random(lr, D * F, 0.4f);
    if (s.identity)
      std::fill(wo.begin(), wo.end(), 0.0f), std::fill(down.begin(), down.end(), 0.0f);
    b.tensor_f32(n("attn_output.weight"), {D, D}, wo);
    b.tensor_f32(n("ffn_gate.weight"), {D, F}, gate);
    b.tensor_f32(n("ffn_up.weight"), {D, F}, up);
    b.tensor_f32(n("ffn_down.weight"), {F, D}, down);
  }
  return Model::load(test::write_temp_file(name, b.build()));
}

std::vector<ProbeItem> probe() {
  std::mt19937 rng(5);
  std::vector<ProbeItem> items;
  for (int k = 0; k < 4; ++k) {
    ProbeItem it;
    it.id = std::to_string(k);
    for (int t = 0; t < 5 + 2 * k; ++t) it.tokens.push_back(static_cast<int32_t>(rng() % kVocab));
    items.push_back(it);
  }
  return items;
}

DiagnosticsOptions one_thread() {
  DiagnosticsOptions o;
  o.n_threads = 1;
  return o;
}

// Layer 1 is exactly the identity (it adds 0 to the stream), layers 0, 2, 3 are random.
//  - cos(h_1, h_2) = 1 and |Δ_1|/|h_1| = 0 because h_2 = h_1.
//  - Removing layer 1 changes nothing: skip KL 0.
//  - Series of layer 2 on layer 1: h_1 + Δ_1 = h_1, so Δ_2 is computed on the same input: 0.
//  - Swapping the identity with a neighbour X: X then identity = X alone = identity then X, so
//    layers (0,1) and (1,2) commute exactly (stream change 0, output KL 0).
//  - The logit lens after layer 1 reads the same stream as after layer 0: equal KL and top-1.
//  - The lens after the last layer is the model's own output: KL 0, top-1 agreement 1.
TEST(AnalyzeDiagnostics, IdentityLayerHasKnownStatistics) {
  auto m = build("analyze-identity.gguf", {{11}, {12, true}, {13}, {14}});
  auto d = run_diagnostics(*m, probe(), one_thread());
  ASSERT_EQ(d.layers.size(), 4u);
  const auto& L = d.layers;
  EXPECT_NEAR(L[1].cos_in_out, 1.0, 1e-9);
  EXPECT_EQ(L[1].rel_update, 0.0);
  EXPECT_NEAR(L[1].skip_kl, 0.0, 1e-9);
  EXPECT_EQ(L[1].series, 0.0);
  EXPECT_EQ(L[0].commute, 0.0);
  EXPECT_EQ(L[1].commute, 0.0);
  EXPECT_NEAR(L[0].commute_kl, 0.0, 1e-9);
  EXPECT_NEAR(L[1].commute_kl, 0.0, 1e-9);
  EXPECT_DOUBLE_EQ(L[0].lens_kl, L[1].lens_kl);
  EXPECT_DOUBLE_EQ(L[0].lens_top1, L[1].lens_top1);
  EXPECT_NEAR(L[3].lens_kl, 0.0, 1e-6);
  EXPECT_EQ(L[3].lens_top1, 1.0);
  // The random layers are not the identity and do not commute (generic weights).
  for (int l : {0, 2, 3}) {
    EXPECT_LT(L[l].cos_in_out, 0.999) << l;
    EXPECT_GT(L[l].rel_update, 0.01) << l;
    EXPECT_GT(L[l].skip_kl, 1e-4) << l;
  }
  EXPECT_GT(L[2].commute, 0.01);
  EXPECT_GT(L[2].commute_kl, 1e-5);
  // The last layer has no successor.
  EXPECT_TRUE(std::isnan(L[3].series));
  EXPECT_TRUE(std::isnan(L[3].commute));
}

// Layers 1 and 2 carry identical weights. Swapping them gives the same path, so the commute
// statistics of pair (1,2) are exactly 0 although both layers change the stream, and layer 2
// does depend on layer 1's update (series > 0).
TEST(AnalyzeDiagnostics, IdenticalLayersCommuteExactly) {
  auto m = build("analyze-twins.gguf", {{21}, {22}, {22}});
  auto d = run_diagnostics(*m, probe(), one_thread());
  EXPECT_EQ(d.layers[1].commute, 0.0);
  EXPECT_NEAR(d.layers[1].commute_kl, 0.0, 1e-12);
  EXPECT_GT(d.layers[1].rel_update, 0.01);
  EXPECT_GT(d.layers[2].rel_update, 0.01);
  EXPECT_GT(d.layers[1].series, 0.01);
  EXPECT_GT(d.layers[0].commute, 0.01);
}

// Pure series: the embeddings are zero on the upper half of the dims and layer 1 reads only the
// upper half (norm gains zero elsewhere). On h_0 its normed input is exactly 0, so q = k = v = 0,
// attention output 0, gate = up = 0, silu(0)·0 = 0: Δ_1(h_0) = 0. Layer 0 (random) writes into
// the upper half, so Δ_1(h_0 + Δ_0) ≠ 0, and the series ratio |Δ_1(h_1) − 0| / |Δ_1(h_1)| is 1.
TEST(AnalyzeDiagnostics, LayerReadingOnlyItsPredecessorIsFullySerial) {
  auto m = build("analyze-series.gguf", {{31}, {32, false, true}, {33}}, /*embed_lower_only=*/true);
  auto d = run_diagnostics(*m, probe(), one_thread());
  EXPECT_NEAR(d.layers[0].series, 1.0, 1e-12);
  EXPECT_GT(d.layers[1].rel_update, 0.01);
  // Swapped, layer 1 runs first on h_0 and adds nothing; the pair then equals layer 0 alone,
  // so the swap loses exactly layer 1's update: change = |Δ_1(h_1)| / |Δ_0 + Δ_1(h_1)| > 0.
  EXPECT_GT(d.layers[0].commute, 0.01);
}

// Every layer after layer 0 is the identity, so each lens reads the final stream: KL 0, top-1 1.
TEST(AnalyzeDiagnostics, LensIsExactWhenLaterLayersAreIdentity) {
  auto m = build("analyze-lens.gguf", {{41}, {42, true}, {43, true}});
  auto d = run_diagnostics(*m, probe(), one_thread());
  for (const auto& l : d.layers) {
    EXPECT_NEAR(l.lens_kl, 0.0, 1e-6) << l.layer;
    EXPECT_EQ(l.lens_top1, 1.0) << l.layer;
  }
  // drift between streams that are equal is 0; the embedding differs from them.
  EXPECT_EQ(d.drift[1][3], 0.0);
  EXPECT_GT(d.drift[0][1], 0.01);
  EXPECT_NEAR(d.sim[1][3], 1.0, 1e-9);
}

TEST(AnalyzeDiagnostics, WithoutInterventionsOnlyPlainStatistics) {
  auto m = build("analyze-plain.gguf", {{51}, {52}});
  auto o = one_thread();
  o.interventions = false;
  auto d = run_diagnostics(*m, probe(), o);
  EXPECT_TRUE(std::isnan(d.layers[0].skip_kl));
  EXPECT_TRUE(std::isnan(d.layers[0].series));
  EXPECT_GT(d.layers[0].rel_update, 0.0);
  EXPECT_EQ(d.n_tokens, 5 + 7 + 9 + 11);
}

// The progress hook hears of every probe item once, in order, with and without interventions.
TEST(AnalyzeDiagnostics, ReportsProgressPerItem) {
  auto m = build("analyze-progress.gguf", {{71}, {72}});
  for (bool interventions : {true, false}) {
    auto o = one_thread();
    o.interventions = interventions;
    std::vector<size_t> calls;
    o.progress = [&](size_t done) { calls.push_back(done); };
    run_diagnostics(*m, probe(), o);
    EXPECT_EQ(calls, (std::vector<size_t>{1, 2, 3, 4})) << interventions;
  }
}

TEST(AnalyzeDiagnostics, RejectsEmptyProbe) {
  auto m = build("analyze-empty.gguf", {{61}});
  EXPECT_THROW(run_diagnostics(*m, {}), Error);
}

TEST(AnalyzeMath, KlByHand) {
  // p = (1/2, 1/2), q = (3/4, 1/4): KL = ½ ln(⅔) + ½ ln 2 = ½ ln(4/3).
  const float p[2] = {0.0f, 0.0f}, q[2] = {std::log(3.0f), 0.0f};
  EXPECT_NEAR(kl_from_logits(p, q, 2), 0.5 * std::log(4.0 / 3.0), 1e-6);
  EXPECT_EQ(kl_from_logits(p, p, 2), 0.0);
}

TEST(AnalyzeMath, SpearmanByHand) {
  EXPECT_DOUBLE_EQ(spearman({1, 2, 3, 4, 5}, {10, 20, 30, 40, 50}), 1.0);
  EXPECT_DOUBLE_EQ(spearman({1, 2, 3, 4, 5}, {5, 4, 3, 2, 1}), -1.0);
  // Ranks of b with a tie: (1, 2, 3.5, 5, 3.5); Σ dadb = 8, Σda² = 10, Σdb² = 9.5.
  EXPECT_NEAR(spearman({1, 2, 3, 4, 5}, {5, 6, 7, 8, 7}), 8.0 / std::sqrt(95.0), 1e-12);
  EXPECT_TRUE(std::isnan(spearman({1, 1, 1}, {1, 2, 3})));
}

Diagnostics grid(int N) {
  Diagnostics d;
  d.n_layer = N;
  d.drift.assign(N + 1, std::vector<double>(N + 1, 0.0));
  d.layers.resize(N);
  return d;
}

TEST(AnalyzePredict, DriftRanksSmallestDisplacementFirst) {
  auto d = grid(3);
  // drift[i][j] for i < j <= 3; (1,2) moves the stream least, (0,3) most.
  d.drift[0][1] = 0.5, d.drift[0][2] = 0.7, d.drift[0][3] = 0.9;
  d.drift[1][2] = 0.1, d.drift[1][3] = 0.4, d.drift[2][3] = 0.3;
  auto p = predict_drift(d);
  ASSERT_EQ(p.ranked.size(), 6u);
  EXPECT_EQ(p.ranked[0].i, 1);
  EXPECT_EQ(p.ranked[0].j, 2);
  EXPECT_EQ(p.ranked[1].i, 2);
  EXPECT_EQ(p.ranked.back().i, 0);
  EXPECT_EQ(p.ranked.back().j, 3);
}

TEST(AnalyzePredict, StabilityFavoursFlatZones) {
  auto d = grid(5);
  const double r[5] = {0.1, 0.2, 0.4, 0.4, 0.4};
  for (int l = 0; l < 5; ++l) d.layers[l].rel_update = r[l];
  // |dr/dl|: 0.1, 0.15, 0.1, 0, 0 -> blocks inside layers 3..4 score 0; ties: shorter, earlier.
  auto p = predict_stability(d);
  ASSERT_EQ(p.ranked.size(), 15u);
  EXPECT_EQ(p.ranked[0].i, 3);
  EXPECT_EQ(p.ranked[0].j, 4);
  EXPECT_EQ(p.ranked[1].i, 4);
  EXPECT_EQ(p.ranked[2].i, 3);
  EXPECT_EQ(p.ranked[2].j, 5);
  EXPECT_NEAR(p.ranked[0].score, 0.0, 1e-12);
  EXPECT_NEAR(p.ranked.back().score, -0.15, 1e-12);  // (1, 2)
}

TEST(AnalyzePredict, HitAtKAndChanceByHand) {
  // 5 layers: 15 blocks. Measured best (1, 3). Only (4, 5) lies outside ±2 of it in i or j
  // (|4 - 1| = 3), so 14 of 15 blocks hit: chance at k = 1 is 14/15.
  Prediction p{"test", {}};
  std::vector<MeasuredDelta> measured;
  double score = 100;
  // Predicted order: (4,5) first, then (2,4), then the rest.
  p.ranked.push_back({4, 5, score--});
  p.ranked.push_back({2, 4, score--});
  for (int i = 0; i < 5; ++i)
    for (int j = i + 1; j <= 5; ++j) {
      if ((i == 4 && j == 5) || (i == 2 && j == 4)) continue;
      p.ranked.push_back({i, j, score--});
    }
  for (const auto& b : p.ranked)
    measured.push_back({b.i, b.j, b.i == 1 && b.j == 3 ? 1.0 : -1.0 - b.i});
  auto v = validate(p, measured);
  EXPECT_EQ(v.n, 15u);
  EXPECT_EQ(v.best.i, 1);
  EXPECT_EQ(v.best.j, 3);
  ASSERT_EQ(v.hits.size(), 3u);
  EXPECT_FALSE(v.hits[0].hit);
  EXPECT_NEAR(v.hits[0].chance, 14.0 / 15.0, 1e-12);
  EXPECT_TRUE(v.hits[1].hit);
  EXPECT_DOUBLE_EQ(v.hits[1].chance, 1.0);  // any 3 blocks include one of the 14
}

TEST(AnalyzePredict, PerfectPredictionHasSpearmanOne) {
  Prediction p{"test", {{0, 1, 3}, {1, 2, 2}, {0, 2, 1}, {1, 3, 0}, {2, 3, -1}}};
  std::vector<MeasuredDelta> m = {{0, 1, 0.3}, {1, 2, 0.2}, {0, 2, 0.1}, {1, 3, 0.0}, {2, 3, -0.5}};
  auto v = validate(p, m);
  EXPECT_DOUBLE_EQ(v.spearman, 1.0);
  // Only the identity permutation (1 of 120) and its reverse reach |rho| = 1: p ≈ 2/120.
  EXPECT_NEAR(v.spearman_p, 2.0 / 120.0, 0.006);
  EXPECT_TRUE(v.hits[0].hit);
}

TEST(AnalyzePredict, AgainstMissingStoreNamesTheFile) {
  try {
    load_scan("/nonexistent/scan.db", 5, "");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/scan.db"), std::string::npos);
  }
}

// Plot axes stay inside what a statistic can take and tick at round numbers.
TEST(AnalyzePlot, AxisStaysWithinTheStatisticsRange) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  // A KL from 0.01 to 12.9 (stories260K's logit lens): 0..15 in steps of 5, not below 0.
  Axis kl = nice_axis(0.01, 12.9, 0, kInf);
  EXPECT_DOUBLE_EQ(kl.lo, 0);
  EXPECT_DOUBLE_EQ(kl.hi, 15);
  EXPECT_DOUBLE_EQ(kl.step, 5);
  // KL at exactly 0 (the last layer): the axis starts at 0, not at -step.
  EXPECT_DOUBLE_EQ(nice_axis(0, 3.2, 0, kInf).lo, 0);
  // Agreement from 0.0108 to 1: 0..1 in quarters, not above 1.
  Axis top1 = nice_axis(0.0108, 1.0, 0, 1);
  EXPECT_DOUBLE_EQ(top1.lo, 0);
  EXPECT_DOUBLE_EQ(top1.hi, 1);
  EXPECT_DOUBLE_EQ(top1.step, 0.25);
  // Cosines 0.773..0.878: 0.75..0.9 in steps of 0.05.
  Axis cos = nice_axis(0.773, 0.878, -1, 1);
  EXPECT_NEAR(cos.lo, 0.75, 1e-12);
  EXPECT_NEAR(cos.hi, 0.9, 1e-12);
  EXPECT_NEAR(cos.step, 0.05, 1e-12);
  // A flat series at 1 (an agreement of 1 everywhere) still gets a window, capped at 1.
  Axis flat = nice_axis(1, 1, 0, 1);
  EXPECT_LT(flat.lo, 1);
  EXPECT_DOUBLE_EQ(flat.hi, 1);
}

}  // namespace
}  // namespace reprise::analyze
