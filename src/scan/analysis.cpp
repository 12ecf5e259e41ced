#include "scan/analysis.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>

#include "eval/stats.h"
#include "util/error.h"

namespace reprise::scan {
namespace {

// Primary-metric scores of one config, keyed by (task, item), sign-adjusted.
std::map<std::pair<std::string, std::string>, double> primary_scores(
    const Store& store, const std::string& key, const std::string& phase,
    const std::vector<PrimaryMetric>& metrics) {
  std::map<std::pair<std::string, std::string>, double> out;
  for (const ItemScore& s : store.scores(key, phase))
    for (const auto& m : metrics)
      if (s.task == m.task && s.metric == m.metric) out[{s.task, s.item}] = s.value;
  return out;
}

}  // namespace

std::vector<PrimaryMetric> primary_metrics(const Store& store) {
  auto raw = store.meta("primary_metrics");
  if (!raw) throw Error(fmt::format("{}: not a scan store (no primary_metrics)", store.path()));
  std::vector<PrimaryMetric> out;
  for (const auto& j : nlohmann::json::parse(*raw))
    out.push_back({j.at("task"), j.at("metric"), j.at("binary"), j.at("higher_is_better")});
  return out;
}

PhaseStats analyze_phase(const Store& store, const std::string& phase, uint64_t seed) {
  const auto metrics = primary_metrics(store);
  const bool binary = std::all_of(metrics.begin(), metrics.end(), [](auto& m) { return m.binary; });
  auto base = primary_scores(store, "baseline", phase, metrics);
  if (base.empty())
    throw Error(fmt::format("{}: phase '{}' has no baseline scores", store.path(), phase));
  auto sign = [&](const std::string& task) {
    for (const auto& m : metrics)
      if (m.task == task) return m.higher_is_better ? 1.0 : -1.0;
    return 1.0;
  };
  PhaseStats ps;
  ps.phase = phase;
  std::vector<double> a;
  for (const auto& [k, v] : base) a.push_back(v);
  ps.baseline_score = eval::mean(a);
  ps.n = a.size();

  for (const ConfigRecord& rec : store.configs(phase)) {
    if (rec.key == "baseline") continue;
    auto cfg = primary_scores(store, rec.key, phase, metrics);
    if (cfg.size() != base.size())
      throw Error(fmt::format("{}: config {} has {} items in phase '{}', the baseline {}",
                              store.path(), rec.key, cfg.size(), phase, base.size()));
    std::vector<double> x, y;  // sign-adjusted baseline and config scores
    std::vector<double> raw, raw_base;
    for (const auto& [k, v] : base) {
      auto it = cfg.find(k);
      if (it == cfg.end())
        throw Error(fmt::format("{}: config {} lacks item {}/{}", store.path(), rec.key, k.first,
                                k.second));
      x.push_back(sign(k.first) * v);
      y.push_back(sign(k.first) * it->second);
      raw.push_back(it->second);
      raw_base.push_back(v);
    }
    ConfigStats cs;
    cs.config = Config::from_key(rec.key);
    cs.path = rec.path;
    cs.n = x.size();
    cs.score = eval::mean(raw);
    std::vector<double> d(x.size());
    for (size_t i = 0; i < x.size(); ++i) d[i] = y[i] - x[i];
    cs.delta = eval::mean(d);
    eval::BootstrapOptions bo;
    bo.seed = seed;
    auto ci = eval::bootstrap_mean_ci(d, bo);
    cs.ci_lo = ci.lo;
    cs.ci_hi = ci.hi;
    // Both tests are symmetric in sign, so the unadjusted 0/1 scores serve McNemar.
    cs.p_value = binary ? eval::mcnemar_exact(raw_base, raw).p_value
                        : eval::paired_t_test(x, y).p_value;
    if (std::isnan(cs.p_value)) cs.p_value = 1.0;
    cs.layer_evals = rec.layer_evals;
    cs.layer_evals_full = rec.layer_evals_full;
    ps.configs.push_back(cs);
  }
  std::vector<double> p;
  for (const auto& c : ps.configs) p.push_back(c.p_value);
  auto holm = eval::holm_adjust(p), bh = eval::bh_adjust(p);
  for (size_t k = 0; k < ps.configs.size(); ++k) {
    ps.configs[k].p_holm = holm[k];
    ps.configs[k].p_bh = bh[k];
  }
  return ps;
}

std::vector<ConfigStats> ranked(const PhaseStats& stats) {
  auto out = stats.configs;
  std::stable_sort(out.begin(), out.end(),
                   [](const ConfigStats& a, const ConfigStats& b) { return a.delta > b.delta; });
  return out;
}

}  // namespace reprise::scan
