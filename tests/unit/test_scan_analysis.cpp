// The scan's statistics on stores built by hand: seeds, per-task statistics, paired skip
// controls, missing items, clusters, duplicates, the minimum detectable effect, and a null
// simulation of the held-out "survives" rule.
#include <gtest/gtest.h>

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <set>

#include <fmt/format.h>

#include "eval/evaluator.h"
#include "eval/registry.h"
#include "eval/rng.h"
#include "eval/stats.h"
#include "report/scan_report.h"
#include "scan/analysis.h"
#include "scan/plan.h"
#include "scan/runner.h"
#include "scan/store.h"
#include "support/test_support.h"
#include "util/error.h"

namespace reprise::scan {
namespace {

namespace fs = std::filesystem;

constexpr int kLayers = 4;

fs::path fresh_store(const std::string& name) {
  auto dir = test::scratch("analysis");
  fs::create_directories(dir);
  auto p = dir / name;
  fs::remove(p);
  return p;
}

struct FakeTask {
  std::string task, metric;
  bool binary = true;
};

// A store as the runner leaves it: identity (with the seed), primary metrics, layer count.
void init(Store& s, const std::vector<FakeTask>& tasks, uint64_t seed) {
  nlohmann::json def = nlohmann::json::array(), pm = nlohmann::json::array();
  for (const auto& t : tasks) {
    def.push_back({{"task", t.task}, {"search_items", 0}});
    pm.push_back(
        {{"task", t.task}, {"metric", t.metric}, {"binary", t.binary}, {"higher_is_better", true}});
  }
  def.push_back({{"seed", seed}});
  s.bind_identity({{"model_sha256", "m"}, {"tasks", def.dump()}, {"items_sha256", "x"}});
  s.set_meta("primary_metrics", pm.dump());
  s.set_meta("n_layer", std::to_string(kLayers));
  s.set_meta("model_name", "fake.gguf");
}

std::string item_id(size_t i) {
  return fmt::format("i{:04}", i);
}

// Scores of one config: per task, (metric, values of items 0..n-1).
using Values = std::vector<std::pair<FakeTask, std::vector<double>>>;

void put(Store& s, const std::string& key, const Values& values,
         const std::string& phase = "search", std::string path = "") {
  std::vector<ItemScore> scores;
  for (const auto& [t, v] : values)
    for (size_t i = 0; i < v.size(); ++i) scores.push_back({t.task, item_id(i), t.metric, v[i]});
  if (path.empty()) path = Config::from_key(key).path(kLayers).canonical();
  s.save_config({key, path, phase, 1, 1, 0.0}, scores);
}

std::vector<double> normal_scores(uint64_t seed, size_t n, double shift = 0) {
  eval::Rng r(seed);
  std::vector<double> v(n);
  for (double& x : v) x = shift + r.normal();
  return v;
}

const FakeTask kAcc{"quiz", "acc", true};
const FakeTask kLoglik{"stories", "loglik_per_token", false};

TEST(ScanAnalysis, StatisticsUseTheSeedRecordedInTheStore) {
  const auto base = normal_scores(1, 30), cfg = normal_scores(2, 30, 0.2);
  std::vector<double> d(30);
  for (size_t i = 0; i < d.size(); ++i) d[i] = cfg[i] - base[i];
  for (uint64_t seed : {7u, 99u}) {
    auto p = fresh_store(fmt::format("seed{}.db", seed));
    {
      Store s(p);
      init(s, {kLoglik}, seed);
      put(s, "baseline", {{kLoglik, base}});
      put(s, "repeat:1:3", {{kLoglik, cfg}});
    }
    Store s(p);
    const auto ps = analyze_phase(s, "search");
    EXPECT_EQ(ps.seed, seed);
    eval::BootstrapOptions bo;
    bo.seed = seed;
    const auto want = eval::bootstrap_mean_ci(d, bo);
    EXPECT_EQ(ps.configs.at(0).tasks.at(0).ci_lo, want.lo) << seed;
    EXPECT_EQ(ps.configs.at(0).tasks.at(0).ci_hi, want.hi) << seed;
    // The report states it and prints that interval (not one drawn with seed 1234).
    const auto text = report::scan_summary(p);
    EXPECT_NE(text.find(fmt::format("bootstrap seed {}", seed)), std::string::npos) << text;
    EXPECT_NE(text.find(fmt::format("[{:+.4f}, {:+.4f}]", want.lo, want.hi)), std::string::npos)
        << text;
  }
}

// Items right (1) or wrong (0): `right` is the set of items answered correctly.
std::vector<double> answers(size_t n, const std::set<size_t>& right) {
  std::vector<double> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = right.count(i) ? 1.0 : 0.0;
  return v;
}

std::set<size_t> range(size_t lo, size_t hi) {
  std::set<size_t> s;
  for (size_t i = lo; i < hi; ++i) s.insert(i);
  return s;
}

TEST(ScanAnalysis, SkipControlVerdictComesFromAPairedTest) {
  auto p = fresh_store("controls.db");
  const size_t n = 60;
  {
    Store s(p);
    init(s, {kAcc}, 1234);
    put(s, "baseline", {{kAcc, answers(n, range(0, 30))}});
    // repeat:0:2 is 2 items better than skip:0:2 (a higher point estimate, not a significant one).
    put(s, "repeat:0:2", {{kAcc, answers(n, range(0, 32))}});
    put(s, "skip:0:2", {{kAcc, answers(n, range(0, 30))}});
    // repeat:1:3 gets 14 items right that skip:1:3 misses, and none the other way round.
    put(s, "repeat:1:3", {{kAcc, answers(n, range(0, 31))}});
    put(s, "skip:1:3", {{kAcc, answers(n, range(0, 17))}});
    // repeat:2:4 misses 14 items that skip:2:4 gets right.
    put(s, "repeat:2:4", {{kAcc, answers(n, range(0, 16))}});
    put(s, "skip:2:4", {{kAcc, answers(n, range(0, 30))}});
  }
  Store s(p);
  const auto ps = analyze_phase(s, "search");
  const auto c = skip_controls(ps, 0,
                               {Config::from_key("repeat:0:2"), Config::from_key("repeat:1:3"),
                                Config::from_key("repeat:2:4")});
  ASSERT_EQ(c.size(), 3u);
  EXPECT_EQ(c[0].verdict, "no difference");
  EXPECT_NEAR(c[0].delta, 2.0 / n, 1e-12);
  EXPECT_NEAR(c[0].p_value, eval::mcnemar_exact_p(0, 2), 1e-12);  // 0.5
  EXPECT_EQ(c[1].verdict, "beats skip");
  EXPECT_NEAR(c[1].p_value, eval::mcnemar_exact_p(0, 14), 1e-12);
  EXPECT_NEAR(c[1].p_holm, std::min(1.0, 3 * eval::mcnemar_exact_p(0, 14)), 1e-12);
  EXPECT_EQ(c[2].verdict, "worse than skip");
  EXPECT_LT(c[1].ci_lo, c[1].delta);
  EXPECT_GT(c[1].ci_lo, 0.0);
}

TEST(ScanAnalysis, MultiTaskStatisticsArePerTaskAndTheRankingIsUnitFree) {
  auto p = fresh_store("multi.db");
  const size_t n = 40;
  const auto acc_base = answers(n, range(0, 20));
  const auto ll_base = normal_scores(5, n, -3.0);
  auto shifted = [&](double by) {
    auto v = ll_base;
    for (double& x : v) x += by;
    return v;
  };
  {
    Store s(p);
    init(s, {kAcc, kLoglik}, 1234);
    put(s, "baseline", {{kAcc, acc_base}, {kLoglik, ll_base}});
    put(s, "repeat:0:2", {{kAcc, answers(n, range(0, 26))}, {kLoglik, shifted(-0.5)}});
    put(s, "repeat:1:3", {{kAcc, answers(n, range(0, 18))}, {kLoglik, shifted(0.3)}});
    put(s, "repeat:2:4", {{kAcc, answers(n, range(0, 17))}, {kLoglik, shifted(-0.6)}});
  }
  Store s(p);
  const auto ps = analyze_phase(s, "search");
  ASSERT_EQ(ps.tasks.size(), 2u);
  EXPECT_EQ(ps.tasks[0].metric.task, "quiz");
  EXPECT_DOUBLE_EQ(ps.tasks[0].score, 0.5);
  EXPECT_DOUBLE_EQ(ps.tasks[1].score, eval::mean(ll_base));
  const auto& c0 = ps.configs.at(0);
  // Each task's delta is in its own unit: +6 of 40 answers, and -0.5 nats per token.
  EXPECT_NEAR(c0.tasks[0].delta, 6.0 / n, 1e-12);
  EXPECT_NEAR(c0.tasks[1].delta, -0.5, 1e-12);
  EXPECT_NEAR(c0.tasks[0].p_value, eval::mcnemar_exact_p(0, 6), 1e-12);
  const double se_acc = eval::standard_error(acc_base), se_ll = eval::standard_error(ll_base);
  EXPECT_NEAR(c0.tasks[0].z, (6.0 / n) / se_acc, 1e-12);
  EXPECT_NEAR(c0.tasks[1].z, -0.5 / se_ll, 1e-12);
  EXPECT_NEAR(c0.combined, ((6.0 / n) / se_acc - 0.5 / se_ll) / 2, 1e-12);
  // repeat:0:2 is best on quiz, repeat:1:3 on stories; repeat:2:4 is worse than both on both.
  EXPECT_TRUE(ps.configs[0].pareto);
  EXPECT_TRUE(ps.configs[1].pareto);
  EXPECT_FALSE(ps.configs[2].pareto);
  // The report has a section per task and the combined table; no pooled mean of the two.
  const auto text = report::scan_summary(p);
  EXPECT_NE(text.find("quiz: baseline acc = 0.5000 on 40 items"), std::string::npos) << text;
  EXPECT_NE(text.find("stories: baseline loglik_per_token = "), std::string::npos) << text;
  EXPECT_NE(text.find("combined ranking across tasks (unit-free)"), std::string::npos) << text;
  const double pooled = (eval::mean(acc_base) * n + eval::mean(ll_base) * n) / (2 * n);
  EXPECT_EQ(text.find(fmt::format("{:.4f}", pooled)), std::string::npos) << text;
}

TEST(ScanAnalysis, NaNScoresAreStoredAsMissingAndLeftOut) {
  auto p = fresh_store("nan.db");
  const size_t n = 10;
  auto base = normal_scores(3, n), cfg = normal_scores(4, n);
  base[4] = cfg[4] = std::nan("");  // e.g. an empty text: no tokens to score
  {
    Store s(p);
    init(s, {kLoglik}, 1234);
    put(s, "baseline", {{kLoglik, base}});  // threw "NOT NULL constraint failed" before
    put(s, "repeat:1:3", {{kLoglik, cfg}});
  }
  Store s(p);
  EXPECT_EQ(s.missing("search").size(), 2u);
  const auto ps = analyze_phase(s, "search");
  EXPECT_EQ(ps.tasks[0].n, n - 1);
  EXPECT_EQ(ps.tasks[0].missing, 1u);
  EXPECT_FALSE(std::isnan(ps.configs[0].tasks[0].delta));
  const auto text = report::scan_summary(p);
  EXPECT_NE(text.find("1 items some config scored as NaN"), std::string::npos) << text;
}

TEST(ScanAnalysis, ClusteredItemsAreBootstrappedByUnitAndTheReportSaysSo) {
  auto p = fresh_store("cluster.db");
  const size_t n = 40;
  // Items come in pairs whose differences move together (one passage, two questions).
  auto base = normal_scores(8, n), d = normal_scores(9, n / 2, 0.1);
  std::vector<double> cfg(n);
  for (size_t i = 0; i < n; ++i) cfg[i] = base[i] + d[i / 2];
  {
    Store s(p);
    init(s, {kLoglik}, 1234);
    std::vector<ItemCluster> units;
    for (size_t i = 0; i < n; ++i)
      units.push_back({kLoglik.task, item_id(i), std::to_string(i / 2)});
    s.save_clusters(units);
    put(s, "baseline", {{kLoglik, base}});
    put(s, "repeat:1:3", {{kLoglik, cfg}});
  }
  Store s(p);
  const auto ps = analyze_phase(s, "search");
  EXPECT_EQ(ps.tasks[0].clusters, n / 2);
  const auto& t = ps.configs[0].tasks[0];
  // Pairs of equal differences: the item bootstrap pretends to have 40 independent values and
  // is about sqrt(2) too narrow; the unit bootstrap is not.
  EXPECT_GT(ps.tasks[0].cluster_widening, 1.2);
  EXPECT_GT(t.ci_hi - t.ci_lo, 1.2 * (t.ci_hi_items - t.ci_lo_items));
  std::vector<size_t> units(n);
  for (size_t i = 0; i < n; ++i) units[i] = i / 2;
  std::vector<double> diff(n);
  for (size_t i = 0; i < n; ++i) diff[i] = cfg[i] - base[i];
  eval::BootstrapOptions bo;
  const auto want = eval::cluster_bootstrap_mean_ci(diff, units, bo);
  EXPECT_EQ(t.ci_lo, want.ci.lo);
  EXPECT_EQ(t.ci_hi, want.ci.hi);
  const auto text = report::scan_summary(p);
  EXPECT_NE(text.find("items share units (20 units for 40 items"), std::string::npos) << text;
}

TEST(ScanAnalysis, TablesShowHolmSignificanceAndTheMinimumDetectableEffect) {
  auto p = fresh_store("mde.db");
  const size_t n = 50;
  const auto base = normal_scores(11, n);
  {
    Store s(p);
    init(s, {kLoglik}, 1234);
    put(s, "baseline", {{kLoglik, base}});
    for (const char* key : {"repeat:0:1", "repeat:0:2", "repeat:1:2", "repeat:1:3"}) {
      auto cfg = normal_scores(std::hash<std::string>()(key) % 1000, n, 0.0);
      for (size_t i = 0; i < n; ++i) cfg[i] = base[i] + 0.3 * cfg[i];
      put(s, key, {{kLoglik, cfg}});
    }
  }
  Store s(p);
  const auto ps = analyze_phase(s, "search");
  std::vector<double> se;
  for (const auto& c : ps.configs) se.push_back(c.tasks[0].se);
  std::sort(se.begin(), se.end());
  const double median = (se[1] + se[2]) / 2;
  // 4 configs: alpha 0.05 / 4 = 0.0125, z = 2.4977; power 80%: z = 0.8416.
  EXPECT_NEAR(ps.tasks[0].mde, (2.497705474412 + 0.841621233573) * median, 1e-9);
  const auto text = report::scan_summary(p);
  EXPECT_NE(text.find(fmt::format("minimum detectable effect: {:.4f} loglik_per_token (80% power, "
                                  "two-sided alpha 0.05 / 4 configs, n = 50)",
                                  ps.tasks[0].mde)),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("Holm 5%"), std::string::npos) << text;
  EXPECT_NE(text.find("95% CI (unadj.)"), std::string::npos) << text;
}

TEST(ScanAnalysis, EachLayerPathIsCountedOnce) {
  PlanOptions o;
  o.modes = {Mode::Repeat, Mode::Loop};
  o.loops = {2, 3};
  const auto plan = plan_dense(kLayers, o);
  std::set<std::string> paths;
  for (const auto& c : plan) {
    EXPECT_TRUE(paths.insert(c.path(kLayers).canonical()).second) << c.key();
    EXPECT_FALSE(c.mode == Mode::Loop && c.k == 2) << c.key();
  }
  EXPECT_EQ(plan.size(), 20u);  // 10 blocks, repeat + loop x3
  // A store that has both names of one path (an older scan) counts it once.
  auto p = fresh_store("dup.db");
  const auto base = normal_scores(1, 20), cfg = normal_scores(2, 20, 1.0);
  {
    Store s(p);
    init(s, {kLoglik}, 1234);
    put(s, "baseline", {{kLoglik, base}});
    put(s, "repeat:1:3", {{kLoglik, cfg}});
    put(s, "loop:1:3:2", {{kLoglik, cfg}});
    put(s, "repeat:0:2", {{kLoglik, normal_scores(3, 20)}});
  }
  Store s(p);
  const auto ps = analyze_phase(s, "search");
  ASSERT_EQ(ps.configs.size(), 2u);
  ASSERT_EQ(ps.duplicates.size(), 1u);
  EXPECT_EQ(ps.duplicates[0].first, "loop:1:3:2");
  EXPECT_EQ(ps.duplicates[0].second, "repeat:1:3");
  EXPECT_NEAR(ps.configs[0].tasks[0].p_holm, std::min(1.0, 2 * ps.configs[0].tasks[0].p_value),
              1e-12);
}

// Under the null (every config's scores are the baseline's plus noise with mean 0), the share of
// configs declared to survive must not exceed the one-sided nominal level 2.5%, per config and
// for the whole family of validated configs.
struct NullRates {
  double per_config = 0, family = 0, old_rule_per_config = 0;
};

NullRates simulate_null(bool binary, size_t n, int reps, int configs, size_t min_items) {
  eval::Rng rng(binary ? 77 : 78);
  int survived = 0, family = 0, old_rule = 0;
  for (int r = 0; r < reps; ++r) {
    std::vector<double> base(n);
    std::vector<std::vector<double>> ys(configs, std::vector<double>(n));
    for (size_t i = 0; i < n; ++i) base[i] = binary ? (rng.below(10) < 6 ? 1 : 0) : rng.normal();
    for (auto& y : ys)
      for (size_t i = 0; i < n; ++i) {
        if (!binary) {
          y[i] = base[i] + rng.normal();
        } else {
          // Discordant pairs equally likely either way, (1,0) and (0,1) 15% each: a right
          // baseline answer (60%) turns wrong with probability 1/4, a wrong one (40%) right with
          // 3/8, so the config's accuracy stays 60%.
          const uint64_t u = rng.below(1000);
          y[i] = base[i] == 1 ? (u < 250 ? 0 : 1) : (u < 375 ? 1 : 0);
        }
      }
    std::vector<size_t> own(n);
    for (size_t i = 0; i < n; ++i) own[i] = i;
    const auto ds = compare_to_baseline(base, ys, own, binary, 1.0, 1000 + r, 1000);
    bool any = false;
    for (const auto& d : ds) {
      const bool s = held_out_verdict(d, n, min_items) == Survival::Survives;
      survived += s;
      any |= s;
      old_rule += d.delta > 0 && d.ci_lo > 0;  // the rule before: CI above 0, unadjusted
    }
    family += any;
  }
  const double trials = static_cast<double>(reps) * configs;
  return {survived / trials, family / static_cast<double>(reps), old_rule / trials};
}

TEST(ScanAnalysis, HeldOutSurvivalUnderTheNullStaysAtTheNominalLevel) {
  const int reps = 2000, configs = 5;
  // n = 8: the old rule declared a survival in about 6.5% of null configs.
  for (bool binary : {false, true}) {
    const auto small = simulate_null(binary, 8, reps, configs, /*min_items=*/0);
    const auto held = simulate_null(binary, kMinHeldOut, reps, configs, kMinHeldOut);
    SCOPED_TRACE(binary ? "0/1 scores" : "continuous scores");
    // Binomial noise of 10,000 config trials: sd 0.0016 around 2.5%.
    EXPECT_LE(small.per_config, 0.025 + 0.005) << small.per_config;
    EXPECT_LE(small.family, 0.025 + 0.01) << small.family;
    EXPECT_LE(held.per_config, 0.025 + 0.005) << held.per_config;
    EXPECT_LE(held.family, 0.025 + 0.01) << held.family;
    if (!binary) {
      EXPECT_GT(small.old_rule_per_config, 0.05) << small.old_rule_per_config;
    }
    std::printf(
        "%s: n=8 survives %.4f per config, %.4f per family (old rule %.4f); n=%zu %.4f, "
        "%.4f (old rule %.4f)\n",
        binary ? "binary" : "continuous", small.per_config, small.family, small.old_rule_per_config,
        kMinHeldOut, held.per_config, held.family, held.old_rule_per_config);
  }
  // Below the minimum held-out size nothing survives, however large the gain.
  TaskDelta big;
  big.delta = 1, big.p_gain_holm = 1e-9;
  EXPECT_EQ(held_out_verdict(big, kMinHeldOut - 1), Survival::TooFewItems);
  EXPECT_EQ(held_out_verdict(big, kMinHeldOut), Survival::Survives);
}

TEST(ScanAnalysis, HeldOutItemsAreDisjointByContentFromTheSearch) {
  eval::TaskOptions to;
  const auto task = eval::make_task("probe_chain:1", to);
  const size_t searched = 100, want = 30;
  auto text = [&](size_t i) { return eval::doc_hash("", task->requests(i), ""); };
  std::set<std::string> search;
  for (size_t i = 0; i < searched; ++i) search.insert(text(i));
  // The items right after the search repeat many searched prompts (the defect this guards).
  size_t repeats = 0;
  for (size_t i = searched; i < searched + want; ++i) repeats += search.count(text(i));
  EXPECT_GT(repeats, 10u);
  size_t skipped = 0;
  const auto picked = held_out_items(*task, searched, want, skipped);
  ASSERT_EQ(picked.size(), want);
  EXPECT_GT(skipped, 0u);
  std::set<std::string> seen;
  for (size_t i : picked) {
    EXPECT_FALSE(search.count(text(i))) << i;
    EXPECT_TRUE(seen.insert(text(i)).second) << i;
  }
  // probe_chain:1 has only 38 prompts beyond these 100 that are new: asking for 60 is refused.
  try {
    held_out_items(*task, searched, 60, skipped);
    FAIL() << "60 distinct held-out items do not exist";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("distinct from the 100 searched, but it has only 38"),
              std::string::npos)
        << e.what();
  }
  // Units: BoolQ questions on one passage, WinoGrande twins, one TinyStories story.
  to.data_dir = test::source_dir() / "data";
  const auto boolq = eval::make_task("boolq", to);
  std::set<std::string> passages;
  for (size_t i = 0; i < 200; ++i) passages.insert(boolq->cluster_id(i));
  EXPECT_LT(passages.size(), 200u);
  const auto wino = eval::make_task("winogrande", to);
  EXPECT_EQ(wino->cluster_id(0), wino->cluster_id(1));  // same options, "easier" / "harder"
  EXPECT_NE(wino->cluster_id(1), wino->cluster_id(2));
  std::set<std::string> twin_units;
  for (size_t i = 0; i < wino->size(); ++i) twin_units.insert(wino->cluster_id(i));
  // 235 pairs share their options, 37 more differ in a word before the blank
  // ("although" / "because"); no unit holds more than two sentences.
  EXPECT_EQ(twin_units.size(), 1267u - 235u - 37u);
  const auto stories = eval::make_task("tinystories", to);
  EXPECT_EQ(stories->cluster_id(0), stories->cluster_id(1));
  EXPECT_NE(stories->cluster_id(1), stories->cluster_id(2));  // "Once upon a time, ..." begins
  // Held-out BoolQ items never share a passage with searched ones.
  const auto held = held_out_items(*boolq, 100, 50, skipped);
  std::set<std::string> searched_units;
  for (size_t i = 0; i < 100; ++i) searched_units.insert(boolq->cluster_id(i));
  for (size_t i : held) EXPECT_FALSE(searched_units.count(boolq->cluster_id(i))) << i;
}

}  // namespace
}  // namespace reprise::scan
