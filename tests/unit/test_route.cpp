// The per-input path router: its classifier on data with known answers, candidate choice,
// synthetic stores where features do or do not determine the best path, the router file.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <random>

#include "route/classifier.h"
#include "route/held_out.h"
#include "route/prefix_features.h"
#include "route/router.h"
#include "scan/store.h"
#include "support/route_fixture.h"
#include "support/test_support.h"
#include "util/error.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;
using route::Matrix;

// With features that carry nothing (constant columns), the penalised weights stay 0 and the
// unpenalised biases reach the maximum-likelihood answer: softmax(bias) = the label frequencies.
TEST(RouteClassifier, ConstantFeaturesGiveLabelFrequencies) {
  Matrix x(8, 2);
  for (size_t r = 0; r < 8; ++r) x.row(r)[0] = 3.0, x.row(r)[1] = -1.0;
  const std::vector<size_t> y = {0, 0, 0, 0, 0, 1, 1, 2};
  const auto m = route::fit_softmax(x, y, 3);
  const auto p = m.probabilities(x.row(0));
  EXPECT_NEAR(p[0], 5.0 / 8, 1e-4);
  EXPECT_NEAR(p[1], 2.0 / 8, 1e-4);
  EXPECT_NEAR(p[2], 1.0 / 8, 1e-4);
  for (double w : m.weights) EXPECT_EQ(w, 0.0);
}

// At the optimum the gradient of the penalised loss vanishes: Z^T (P - Y) / n + l2 W = 0 and
// sum(P - Y) = 0 per class, with Z the data standardised here (population sd), independently
// of the fitting code.
TEST(RouteClassifier, FitIsStationary) {
  std::mt19937_64 rng(7);
  std::normal_distribution<double> g;
  const size_t n = 60, d = 3, k = 3;
  Matrix x(n, d);
  std::vector<size_t> y(n);
  for (size_t r = 0; r < n; ++r) {
    for (size_t f = 0; f < d; ++f) x.row(r)[f] = g(rng) * (f + 1) + f;
    y[r] = (x.row(r)[0] + g(rng) > 0) + (x.row(r)[2] + g(rng) > 3);
  }
  route::FitOptions o;
  o.l2 = 0.1;
  o.iterations = 3000;
  const auto m = route::fit_softmax(x, y, k, o);
  std::vector<double> mean(d, 0), sd(d, 0);
  for (size_t r = 0; r < n; ++r)
    for (size_t f = 0; f < d; ++f) mean[f] += x.row(r)[f] / n;
  for (size_t r = 0; r < n; ++r)
    for (size_t f = 0; f < d; ++f) sd[f] += std::pow(x.row(r)[f] - mean[f], 2) / n;
  for (auto& s : sd) s = std::sqrt(s);
  std::vector<double> grad(k * d, 0), gbias(k, 0);
  for (size_t r = 0; r < n; ++r) {
    const auto p = m.probabilities(x.row(r));
    for (size_t c = 0; c < k; ++c) {
      const double e = p[c] - (y[r] == c);
      gbias[c] += e / n;
      for (size_t f = 0; f < d; ++f) grad[c * d + f] += e * (x.row(r)[f] - mean[f]) / sd[f] / n;
    }
  }
  for (size_t c = 0; c < k; ++c) {
    EXPECT_NEAR(gbias[c], 0, 1e-6);
    for (size_t f = 0; f < d; ++f)
      EXPECT_NEAR(grad[c * d + f] + o.l2 * m.weights[c * d + f], 0, 1e-6);
  }
}

// Two classes 10 apart on one feature (far more than the spacing within a class): whichever
// fold a point is left out of, the boundary fitted on the rest lies in the gap.
TEST(RouteClassifier, SeparableDataIsLearnedInCrossValidation) {
  Matrix x(40, 1);
  std::vector<size_t> y(40);
  for (size_t r = 0; r < 40; ++r) {
    y[r] = r >= 20;
    x.row(r)[0] = static_cast<double>(r) - 19.5 + (y[r] ? 10 : 0);
  }
  const auto pred = route::cross_validate(x, y, 2, 5, 1);
  EXPECT_EQ(pred, y);
}

TEST(RouteClassifier, BadInputIsAnError) {
  Matrix x(3, 1);
  try {
    route::fit_softmax(x, {0, 1, 3}, 2);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "label 3 outside 0..1");
  }
  EXPECT_THROW(route::cross_validate(x, {0, 1, 0}, 2, 4, 1), Error);
}

// Against the plain path, config 1 wins items 0-2, config 2 items 2-5 and config 3 item 5: config
// 2 comes first (4 wins). Against {0, 2}, config 1 still wins items 0 and 1, config 3 nothing
// (item 5 is config 2's already), so config 1 follows and the choice stops there.
TEST(RouteCandidates, GreedyChoiceOnKnownScores) {
  const std::vector<std::vector<double>> s = {{0, 1, 0, 0}, {0, 1, 0, 0}, {0, 1, 1, 0},
                                              {0, 0, 1, 0}, {0, 0, 1, 0}, {0, 0, 1, 1},
                                              {1, 0, 0, 0}};
  const std::vector<bool> all(4, true);
  EXPECT_EQ(route::select_candidates(s, 4, all), (std::vector<size_t>{0, 2, 1}));
  EXPECT_EQ(route::select_candidates(s, 2, all), (std::vector<size_t>{0, 2}));
  EXPECT_EQ(route::select_candidates(s, 4, {true, true, false, true}),
            (std::vector<size_t>{0, 1, 3}));
  // Ties go to the earliest candidate: the plain path when nothing beats it.
  EXPECT_EQ(route::best_candidate({1, 1, 1}, {0, 1, 2}), 0u);
  EXPECT_EQ(route::best_candidate({0, 1, 1}, {0, 2, 1}), 1u);
}

// A synthetic store: plain, A (departs at 6) and B (departs at 4). Binary scores; which path
// answers an item right is `rule(item)`; the plain path is right on the others.
route::RouterData synthetic(size_t n, uint64_t seed, bool informative) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> g;
  std::uniform_int_distribution<int> coin(0, 2);
  route::RouterData d;
  d.config_keys = {"baseline", "repeat:3:6", "repeat:2:4"};
  d.config_paths = {"0..7", "0..5,3..7", "0..3,2..7"};
  d.departs = {8, 6, 4};
  d.features = Matrix(n, 5);
  for (size_t i = 0; i < n; ++i) {
    for (size_t f = 0; f < 5; ++f) d.features.row(i)[f] = g(rng);
    const double x0 = d.features.row(i)[0];
    const int best = informative ? (x0 > 0.4 ? 1 : x0 < -0.4 ? 2 : 0) : coin(rng);
    std::vector<double> row(3, 0.0);
    row[best] = 1;
    d.score.push_back(row);
    d.item_task.push_back(i % 2 ? "task_a" : "task_b");
    d.item_id.push_back(std::to_string(i));
  }
  return d;
}

// Candidates (all three paths), then the fit and its cross-validation, with default options.
route::TrainResult train3(const route::RouterData& d) {
  route::TrainOptions o;
  o.paths = 3;
  auto r = route::choose_candidates(d, o);
  EXPECT_EQ(r.candidates.size(), 3u);
  route::fit_router(d, o, r);
  return r;
}

TEST(RouteTrain, FeaturesThatDetermineTheBestPathAreLearned) {
  const auto d = synthetic(300, 11, true);
  const auto r = train3(d);
  EXPECT_EQ(r.feature_layer, 4);  // the earliest departure among the candidates
  EXPECT_GT(r.cv_accuracy, 0.95);
  EXPECT_LT(r.chance, 0.6);
  ASSERT_EQ(r.tasks.size(), 2u);
  for (const auto& t : r.tasks) {
    EXPECT_EQ(t.oracle, 1.0);
    EXPECT_GT(t.router, 0.93);
    EXPECT_LT(t.best_single, 0.5);
    EXPECT_GT(t.vs_best_lo, 0);
    // Binary scores: McNemar. The router wins ~half the items the best single path loses and
    // loses almost none, so the exact test is far below 0.001.
    EXPECT_LT(t.p_vs_best, 1e-3);
  }
  EXPECT_TRUE(r.beats_best_single);
  EXPECT_CONTAINS(r.verdict, "beats the best single path");
  EXPECT_CONTAINS(route::describe(d, r), "cross-validated accuracy");
}

TEST(RouteTrain, FeaturesWithoutInformationStayAtChance) {
  const auto d = synthetic(300, 12, false);
  const auto r = train3(d);
  // Three equally likely labels: chance is about 1/3 and so must the out-of-fold accuracy be.
  EXPECT_NEAR(r.cv_accuracy, 1.0 / 3, 0.09);
  EXPECT_LT(r.cv_accuracy, r.chance + 0.05);
  EXPECT_FALSE(r.beats_best_single);
  for (const auto& t : r.tasks) EXPECT_GT(t.p_vs_best, 0.01);
  EXPECT_CONTAINS(r.verdict, "does not beat the best single path");
  EXPECT_CONTAINS(route::describe(d, r), "does not beat the best single path");
}

TEST(RouteTrain, NothingToRouteIsAnError) {
  auto d = synthetic(20, 13, true);
  for (auto& row : d.score) row = {1, 0, 0};
  route::TrainOptions o;
  try {
    route::choose_candidates(d, o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "no config of the store beats the plain path");
  }
  // A feature layer beyond every departure leaves no eligible candidate either.
  d = synthetic(20, 13, true);
  o.feature_layer = 7;
  EXPECT_THROW(route::choose_candidates(d, o), Error);
}

route::RouterFile small_file() {
  route::RouterFile f;
  f.model_sha256 = "abc";
  f.feature_layer = 2;
  f.candidate_keys = {"baseline", "repeat:1:3"};
  f.candidate_paths = {"0..4", "0..2,1..4"};
  f.model.n_classes = 2, f.model.n_features = 2;
  f.model.mean = {0, 1}, f.model.scale = {1, 2}, f.model.weights = {1, 2, 3, 4};
  f.model.bias = {0.5, -0.5};
  f.cv_accuracy = 0.75;
  return f;
}

TEST(RouteFile, RoundTripsAndRejectsBadFiles) {
  const auto f = small_file();
  const auto back = route::router_from_json(route::to_json(f), "x.json");
  EXPECT_EQ(back.candidate_paths, f.candidate_paths);
  EXPECT_EQ(back.model.weights, f.model.weights);
  EXPECT_EQ(back.feature_layer, 2);
  EXPECT_EQ(back.cv_accuracy, 0.75);

  const fs::path bad = test::scratch("corrupt-router.json");
  std::ofstream(bad) << "{\"format\": \"reprise-router\", ";
  try {
    route::load_router(bad.string());
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), bad.string() + ": not valid JSON");
  }
  auto j = route::to_json(f);
  j.erase("candidates");
  EXPECT_THROW(
      {
        try {
          route::router_from_json(j, "r.json");
        } catch (const Error& e) {
          EXPECT_CONTAINS(e.what(), "r.json: not a router file (no 'candidates')");
          throw;
        }
      },
      Error);
  j = route::to_json(f);
  j["classifier"]["weights"] = {1, 2, 3};
  EXPECT_THROW(route::router_from_json(j, "r.json"), Error);
  EXPECT_EQ(route::auto_router_file("auto:r.json"), "r.json");
  EXPECT_EQ(route::auto_router_file("0..3"), "");
}

// The prefix the router reads is the chosen path's own first L positions: a Session given the
// router's cache runs only the positions after L, and its logits are bit-identical to a run of
// the whole path.
TEST(RouteRun, ChosenPathContinuesFromThePrefixRun) {
  const auto m = Model::load(test::default_model());
  SessionOptions so;
  so.n_threads = 1;
  const int L = 3;
  route::PathRouter router(
      *m, test::constant_router(*m, L, {"baseline", "repeat:1:4"}, {"0..4", "0..3,1..4"}, {0, 4}),
      so);
  const std::vector<int32_t> ids = m->tokenizer()->encode("Once upon a time", EncodeOptions{});
  const int64_t n = static_cast<int64_t>(ids.size());
  const auto c = router.choose(ids);
  EXPECT_EQ(c.key, "repeat:1:4");
  EXPECT_EQ(c.path.canonical(), "0..3,1..4");
  EXPECT_EQ(router.cache().baseline_evals(), n * L);

  Session routed(*m, c.path, so);
  routed.set_prefix_cache(&router.cache());
  const auto got = routed.prefill(ids);
  const std::vector<float> routed_logits(got.begin(), got.end());
  EXPECT_EQ(routed.layer_evals(), n * (8 - L));
  EXPECT_EQ(router.cache().baseline_evals(), n * L);  // not run again
  Session whole(*m, c.path, so);
  const auto want = whole.prefill(ids);
  EXPECT_EQ(routed_logits, std::vector<float>(want.begin(), want.end()));
}

// A scan store written by hand: 8 search and 8 held-out items of one binary task; the plain path,
// A (repeat:1:3) and B (repeat:2:4) validated; a routed entry over plain and B whose choices and
// scores are given. Every figure of the held-out table is then known in advance.
TEST(RouteHeldOut, TableFromAStoreWithARoutedEntry) {
  const fs::path path = test::scratch("held-out-synthetic.db");
  fs::remove(path);
  {
    scan::Store st(path);
    st.set_meta("primary_metrics",
                R"([{"task":"t","metric":"acc","binary":true,"higher_is_better":true}])");
    st.set_meta("tasks", R"([{"task":"t","search_items":8},{"seed":7}])");
    auto save = [&](const std::string& key, const std::string& phase,
                    const std::vector<double>& v) {
      std::vector<scan::ItemScore> sc;
      for (size_t i = 0; i < v.size(); ++i) sc.push_back({"t", std::to_string(i), "acc", v[i]});
      st.save_config({key, key, phase, 0, 0, 2.0}, sc);
    };
    // Search means: plain 0.25, A 0.625, B 0.5: A is the best single path.
    save("baseline", "search", {1, 1, 0, 0, 0, 0, 0, 0});
    save("repeat:1:3", "search", {1, 1, 1, 1, 1, 0, 0, 0});
    save("repeat:2:4", "search", {1, 1, 1, 1, 0, 0, 0, 0});
    // Held out: plain 2/8, A 3/8, B 4/8, oracle over {plain, B} 5/8.
    save("baseline", "validate", {1, 1, 0, 0, 0, 0, 0, 0});
    save("repeat:1:3", "validate", {0, 0, 1, 1, 1, 0, 0, 0});
    save("repeat:2:4", "validate", {0, 1, 1, 1, 1, 0, 0, 0});
    // The router takes B on items 2-7, plain on 0-1: it scores 1,1,1,1,1,0,0,0 = 5/8; on item
    // 7 its score is not B's (as if the routed run had differed), which the agreement counts.
    const std::vector<int> to_b = {0, 0, 1, 1, 1, 1, 1, 1};
    nlohmann::json choices = nlohmann::json::array();
    for (size_t i = 0; i < 8; ++i)
      choices.push_back({{"task", "t"},
                         {"item", std::to_string(i)},
                         {"candidate", to_b[i] ? "repeat:2:4" : "baseline"}});
    st.set_meta("routed",
                nlohmann::json{{"key", "auto:r.json"},
                               {"candidates", {{{"key", "baseline"}}, {{"key", "repeat:2:4"}}}},
                               {"requests", 16},
                               {"decide_seconds", 0.016},
                               {"prefix_seconds", 0.032},
                               {"seconds", 4.0},
                               {"choices", choices}}
                    .dump());
    std::vector<scan::ItemScore> routed;
    const std::vector<double> rv = {1, 1, 1, 1, 1, 0, 0, 1};
    for (size_t i = 0; i < 8; ++i) routed.push_back({"t", std::to_string(i), "acc", rv[i]});
    st.save_config({"auto:r.json", "auto:r.json", scan::kRoutedPhase, 0, 0, 4.0}, routed);
  }
  const scan::Store st(path);
  const auto e = route::evaluate_held_out(st);
  ASSERT_EQ(e.tasks.size(), 1u);
  const auto& t = e.tasks[0];
  EXPECT_EQ(t.n, 8u);
  EXPECT_DOUBLE_EQ(t.plain, 2.0 / 8);
  EXPECT_EQ(t.best_single_key, "repeat:1:3");
  EXPECT_DOUBLE_EQ(t.best_single, 3.0 / 8);
  EXPECT_DOUBLE_EQ(t.router, 6.0 / 8);
  EXPECT_DOUBLE_EQ(t.oracle, 5.0 / 8);
  // McNemar against plain: router wins items 2, 3, 4, 7 and loses none: p = 2 / 2^4.
  EXPECT_NEAR(t.p_vs_plain, 0.125, 1e-12);
  // Against A: the router wins 0, 1, 7 and loses none: p = 2 / 2^3.
  EXPECT_NEAR(t.p_vs_best, 0.25, 1e-12);
  EXPECT_EQ(e.agree, 7u);
  EXPECT_EQ(e.items, 8u);
  EXPECT_EQ(e.chosen.at("repeat:2:4"), 6u);
  EXPECT_DOUBLE_EQ(e.decide, 0.001);
  EXPECT_DOUBLE_EQ(e.prefix, 0.002);
  EXPECT_DOUBLE_EQ(e.routed, 0.25);
  EXPECT_DOUBLE_EQ(e.plain, 0.125);
  const std::string text = route::describe(e);
  EXPECT_CONTAINS(text, "router auto:r.json on 8 held-out items; chosen: baseline 2 repeat:2:4 6");
  EXPECT_CONTAINS(text, "on 7/8 items");
  EXPECT_CONTAINS(text, "router decision 1.000 ms");
  EXPECT_CONTAINS(text, "on held-out items the router ");

  const fs::path bare = test::scratch("held-out-bare.db");
  fs::remove(bare);
  const scan::Store none(bare);
  try {
    route::evaluate_held_out(none);
    FAIL() << "no error";
  } catch (const Error& err) {
    EXPECT_CONTAINS(err.what(), "no routed entry (run the scan with --validate N --path auto:");
  }
}

}  // namespace
}  // namespace reprise
