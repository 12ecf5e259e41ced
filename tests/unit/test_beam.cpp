// Multi-block beam search (scan/beam.h): composition and canonical form of multi-block configs,
// the rank correlation, the surrogates on data with a known relation and on noise, candidate
// expansion and the fall-back ranking.
#include <gtest/gtest.h>

#include <random>

#include "engine/layer_path.h"
#include "scan/beam.h"
#include "scan/plan.h"
#include "util/error.h"

namespace reprise::scan {
namespace {

Config rep(int i, int j, float a = 1) {
  return Config{Mode::Repeat, i, j, 2, a};
}
Config skip(int i, int j) {
  return Config{Mode::Skip, i, j, 0};
}

TEST(BeamCompose, BlocksComposeInOneCanonicalForm) {
  const auto a = compose(5, {rep(1, 2), skip(3, 4)}), b = compose(5, {skip(3, 4), rep(1, 2)});
  ASSERT_TRUE(a && b);
  EXPECT_EQ(a->mode, Mode::Multi);
  EXPECT_EQ(a->key(), "repeat:1:2+skip:3:4");
  EXPECT_EQ(b->key(), a->key());
  EXPECT_EQ(a->path(5).layers, (std::vector<int>{0, 1, 1, 2, 4}));
  EXPECT_EQ(a->path(5).canonical(), "0..1,1..2,4");
  EXPECT_EQ(Config::from_key(a->key()), *a);
  // A multi config composed with one more block flattens into three sorted blocks.
  const auto c = compose(8, {*compose(8, {rep(5, 7), skip(0, 1)}), rep(2, 4, 0.5f)});
  ASSERT_TRUE(c);
  EXPECT_EQ(c->key(), "skip:0:1+repeat:2:4@0.5+repeat:5:7");
  const LayerPath p = c->path(8);
  // Walk: 0 skipped; 1; 2,3 then 2,3 at 0.5; 4; 5,6 twice; 7.
  EXPECT_EQ(p.layers, (std::vector<int>{1, 2, 3, 2, 3, 4, 5, 6, 5, 6, 7}));
  EXPECT_EQ(p.canonical(), "1..3,2..3@0.5,4..6,5..7");
  EXPECT_EQ(parse_layer_path(p.canonical(), 8), p);
  EXPECT_EQ(Config::from_key(c->key()), *c);
  // Adjacent blocks are fine; one block is itself.
  EXPECT_EQ(compose(5, {rep(1, 2), rep(2, 3)})->path(5).canonical(), "0..1,1..2,2..4");
  EXPECT_EQ(compose(5, {rep(1, 3)})->key(), "repeat:1:3");
  // The path of an undamped multi config equals a plain path (no weights carried).
  EXPECT_TRUE(a->path(5).alpha.empty());
}

TEST(BeamCompose, InvalidCompositionsAreRejected) {
  EXPECT_FALSE(compose(5, {rep(1, 3), skip(2, 4)}));   // overlap
  EXPECT_FALSE(compose(5, {rep(1, 3), rep(1, 3)}));    // the same block twice
  EXPECT_FALSE(compose(5, {skip(0, 3), skip(3, 5)}));  // nothing left
  EXPECT_FALSE(compose(5, {rep(1, 2), rep(4, 6)}));    // leaves the model
  EXPECT_FALSE(compose(5, {Config::baseline(), rep(1, 2)}));
  EXPECT_FALSE(compose(5, {}));
  for (const char* key : {"repeat:2:4+repeat:1:3", "repeat:1:2+baseline", "repeat:1:2+"})
    EXPECT_THROW(Config::from_key(key), Error) << key;
}

TEST(BeamExpand, DuplicatesByCanonicalPathAndOverlapsAreDropped) {
  // skip:1:2 + skip:2:3 is the path of skip:1:3, already scored.
  std::vector<std::string> seen = {skip(1, 3).path(6).canonical()};
  const auto out = expand_beam(6, {skip(1, 2), rep(4, 5)},
                               {skip(2, 3), rep(1, 2), skip(1, 2), rep(4, 5)}, 2, seen);
  std::vector<std::string> keys;
  for (const auto& c : out) keys.push_back(c.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"skip:1:2+repeat:4:5", "skip:2:3+repeat:4:5",
                                            "repeat:1:2+repeat:4:5"}))
      << "skip:1:2 + repeat:4:5 is listed once although both beam paths reach it";
  EXPECT_EQ(seen.size(), 4u);
  // At most two blocks: a two-block path is not grown further.
  auto three = compose(6, {skip(1, 2), rep(4, 5)});
  std::vector<std::string> none;
  EXPECT_TRUE(expand_beam(6, {*three}, {rep(2, 3)}, 2, none).empty());
  EXPECT_EQ(expand_beam(6, {*three}, {rep(2, 3)}, 3, none).size(), 1u);
}

// Random one- and two-block configs on a 12-layer model.
std::vector<Config> random_configs(int n, std::mt19937& rng) {
  std::vector<Config> out;
  while (static_cast<int>(out.size()) < n) {
    auto block = [&] {
      const int i = static_cast<int>(rng() % 11), j = i + 1 + static_cast<int>(rng() % 3);
      return rng() % 3 == 0 ? skip(i, std::min(j, 12)) : rep(i, std::min(j, 12));
    };
    auto c = rng() % 2 ? compose(12, {block()}) : compose(12, {block(), block()});
    if (c) out.push_back(*c);
  }
  return out;
}

TEST(BeamSurrogate, KnownMonotoneRelationIsPredictedAndTrusted) {
  std::mt19937 rng(7);
  const auto configs = random_configs(80, rng);
  // Truth: a monotone function of a per-layer weighted sum (extra passes of layers 3..6 help,
  // skipping anything hurts), plus a little noise.
  std::normal_distribution<double> noise(0, 0.05);
  std::vector<std::vector<double>> x;
  std::vector<double> y;
  for (const auto& c : configs) {
    const auto f = path_features(c.path(12), 12);
    double s = 0;
    for (int l = 0; l < 12; ++l) s += (l >= 3 && l <= 6 ? 0.5 : -0.1) * f[l] - 0.8 * f[12 + l];
    x.push_back(f);
    y.push_back(std::tanh(s) + noise(rng));
  }
  EXPECT_GT(held_out_rho("ridge", x, y, 5, 1), 0.9);
  EXPECT_GT(held_out_rho("knn", x, y, 5, 1), 0.6);
  // Candidates of known order: the surrogate is trusted and puts the best first.
  BeamOptions o;
  o.score = 2;
  o.surrogate = "ridge";
  const auto ch = choose_candidates(
      12, configs, y,
      {*compose(12, {skip(0, 1), skip(8, 9)}), rep(3, 7), *compose(12, {rep(3, 5), rep(5, 7)})}, o,
      1);
  EXPECT_TRUE(ch.trusted);
  EXPECT_EQ(ch.model, "ridge");
  ASSERT_EQ(ch.chosen.size(), 2u);
  EXPECT_NE(ch.chosen[0].key().find("repeat:3"), std::string::npos) << ch.chosen[0].key();
  EXPECT_NE(ch.chosen[1].key().find("repeat:3"), std::string::npos) << ch.chosen[1].key();
}

TEST(BeamSurrogate, NoiseIsNotTrustedAndTheSeedRankingIsUsed) {
  std::mt19937 rng(11);
  std::vector<Config> scored = {rep(1, 2), rep(2, 3), skip(4, 5)};
  for (const auto& c : random_configs(70, rng))
    if (c.key() != "repeat:1:2" && c.key() != "repeat:2:3" && c.key() != "skip:4:5")
      scored.push_back(c);
  std::normal_distribution<double> noise(0, 1);
  std::vector<double> y;
  for (size_t i = 0; i < scored.size(); ++i) y.push_back(noise(rng));
  y[0] = 0.3, y[1] = -0.2, y[2] = 0.5;  // the blocks the candidates are made of
  BeamOptions o;
  o.score = 3;
  const auto ch = choose_candidates(
      12, scored, y,
      {*compose(12, {rep(1, 2), rep(2, 3)}), *compose(12, {rep(2, 3), skip(4, 5)}),
       *compose(12, {rep(1, 2), skip(4, 5)})},
      o, 1);
  EXPECT_LT(ch.rho_ridge, 0.6);
  EXPECT_LT(ch.rho_knn, 0.6);
  EXPECT_FALSE(ch.trusted);
  // Sums of block scores: 0.1, 0.3, 0.8.
  ASSERT_EQ(ch.chosen.size(), 3u);
  EXPECT_EQ(ch.chosen[0].key(), "repeat:1:2+skip:4:5");
  EXPECT_EQ(ch.chosen[1].key(), "repeat:2:3+skip:4:5");
  EXPECT_NEAR(ch.predicted[0], 0.8, 1e-12);
  EXPECT_NEAR(ch.predicted[2], 0.1, 1e-12);
}

TEST(BeamSurrogate, TooFewConfigsGiveNoRho) {
  EXPECT_TRUE(std::isnan(held_out_rho("ridge", {{1}, {2}, {3}}, {1, 2, 3}, 5, 1)));
}

TEST(BeamOptionsCheck, BadValuesNameTheOption) {
  auto msg = [](BeamOptions o) {
    try {
      check_beam_options(o);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  BeamOptions o;
  EXPECT_EQ(msg(o), "");
  o.width = 0;
  EXPECT_EQ(msg(o), "--beam must be >= 1, got 0");
  o = {}, o.depth = -1;
  EXPECT_EQ(msg(o), "--depth must be >= 1, got -1");
  o = {}, o.score = 0;
  EXPECT_EQ(msg(o), "--beam-score must be >= 1, got 0");
  o = {}, o.min_rho = 1.5;
  EXPECT_EQ(msg(o), "--surrogate-min-rho must be in [-1, 1], got 1.5");
  o = {}, o.surrogate = "xgb";
  EXPECT_EQ(msg(o), "--surrogate: unknown 'xgb' (known: auto, ridge, knn)");
}

}  // namespace
}  // namespace reprise::scan
