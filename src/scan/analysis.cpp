#include "scan/analysis.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <map>
#include <set>

#include "eval/stats.h"
#include "util/error.h"

namespace reprise::scan {
namespace {

using ItemKey = std::pair<std::string, std::string>;  // (task, item)

// Primary-metric scores of one config, keyed by (task, item), raw.
std::map<ItemKey, double> primary_scores(const Store& store, const std::string& key,
                                         const std::string& phase,
                                         const std::vector<PrimaryMetric>& metrics) {
  std::map<ItemKey, double> out;
  for (const ItemScore& s : store.scores(key, phase))
    for (const auto& m : metrics)
      if (s.task == m.task && s.metric == m.metric) out[{s.task, s.item}] = s.value;
  return out;
}

// Dense cluster ids (0, 1, ... in order of first appearance) for `items` of one task; an item
// without a recorded cluster is its own.
std::vector<size_t> dense_clusters(const std::vector<std::string>& items, const std::string& task,
                                   const std::map<ItemKey, std::string>& recorded) {
  std::map<std::string, size_t> ids;
  std::vector<size_t> out;
  for (const auto& item : items) {
    auto it = recorded.find({task, item});
    const std::string unit = it == recorded.end() ? "item:" + item : it->second;
    out.push_back(ids.emplace(unit, ids.size()).first->second);
  }
  return out;
}

double median(std::vector<double> v) {
  if (v.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(v.begin(), v.end());
  const size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

void mark_pareto(std::vector<ConfigStats>& configs) {
  for (auto& a : configs) {
    a.pareto = std::none_of(configs.begin(), configs.end(), [&](const ConfigStats& b) {
      bool all_ge = true, some_gt = false;
      for (size_t k = 0; k < a.tasks.size(); ++k) {
        all_ge &= b.tasks[k].delta >= a.tasks[k].delta;
        some_gt |= b.tasks[k].delta > a.tasks[k].delta;
      }
      return all_ge && some_gt;
    });
  }
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

uint64_t scan_seed(const Store& store) {
  // The identity's task definition ends with {"seed": N} (scan/runner.cpp).
  if (auto def = store.meta("tasks"))
    for (const auto& j : nlohmann::json::parse(*def))
      if (j.contains("seed")) return j.at("seed").get<uint64_t>();
  throw Error(fmt::format("{}: not a scan store (no seed in its task definition)", store.path()));
}

std::vector<TaskDelta> compare_to_baseline(std::span<const double> baseline,
                                           const std::vector<std::vector<double>>& configs,
                                           std::span<const size_t> cluster, bool binary,
                                           double baseline_se, uint64_t seed, int resamples) {
  const size_t n = baseline.size();
  const bool clustered =
      !cluster.empty() && *std::max_element(cluster.begin(), cluster.end()) + 1 < n;
  std::vector<size_t> own(n);
  for (size_t i = 0; i < n; ++i) own[i] = i;
  eval::BootstrapOptions bo;
  bo.seed = seed;
  bo.resamples = resamples;
  std::vector<TaskDelta> out;
  for (const auto& y : configs) {
    if (y.size() != n)
      throw Error(fmt::format("a config has {} items, the baseline {}", y.size(), n));
    TaskDelta t;
    std::vector<double> d(n);
    for (size_t i = 0; i < n; ++i) d[i] = y[i] - baseline[i];
    t.delta = eval::mean(d);
    const auto items = eval::cluster_bootstrap_mean_ci(d, own, bo);
    const auto units = clustered ? eval::cluster_bootstrap_mean_ci(d, cluster, bo) : items;
    t.ci_lo = units.ci.lo, t.ci_hi = units.ci.hi, t.se = units.se;
    t.ci_lo_items = items.ci.lo, t.ci_hi_items = items.ci.hi;
    // Both tests are symmetric in sign; McNemar wants the 0/1 values, so undo a negative sign.
    std::vector<double> a(baseline.begin(), baseline.end()), b = y;
    if (binary)
      for (size_t i = 0; i < n; ++i) a[i] = std::fabs(a[i]), b[i] = std::fabs(b[i]);
    // Where items share units, the test allows for it as the interval does (cluster-robust).
    t.p_value = eval::paired_p_value(a, b, binary, cluster);
    t.z = baseline_se > 0 ? t.delta / baseline_se : 0;
    out.push_back(t);
  }
  std::vector<double> p, gain;
  for (auto& t : out) {
    t.p_gain = t.delta > 0 ? t.p_value / 2 : 1 - t.p_value / 2;
    p.push_back(t.p_value);
    gain.push_back(t.p_gain);
  }
  const auto holm = eval::holm_adjust(p), bh = eval::bh_adjust(p),
             gain_holm = eval::holm_adjust(gain);
  for (size_t k = 0; k < out.size(); ++k)
    out[k].p_holm = holm[k], out[k].p_bh = bh[k], out[k].p_gain_holm = gain_holm[k];
  return out;
}

namespace {

using Scores = std::map<ItemKey, double>;

// What a phase's analysis reads from the store: the baseline's and each distinct config's
// primary scores, and the items some config could not score (NaN), which are left out of every
// comparison of the phase so that all configs stand on the same items.
struct PhaseInputs {
  std::vector<PrimaryMetric> metrics;
  Scores base;
  std::vector<ConfigRecord> records;  // each layer path once, the baseline not among them
  std::vector<Scores> scores;         // per record
  std::set<ItemKey> missing;
};

PhaseInputs read_phase(const Store& store, const std::string& phase, PhaseStats& ps) {
  PhaseInputs in;
  in.metrics = primary_metrics(store);
  in.base = primary_scores(store, "baseline", phase, in.metrics);
  if (in.base.empty())
    throw Error(fmt::format("{}: phase '{}' has no baseline scores", store.path(), phase));
  for (const auto& [config, s] : store.missing(phase))
    for (const auto& m : in.metrics)
      if (s.task == m.task && s.metric == m.metric) in.missing.insert({s.task, s.item});
  std::map<std::string, std::string> key_of_path;
  for (const ConfigRecord& rec : store.configs(phase)) {
    if (rec.key == "baseline") continue;
    auto [it, fresh] = key_of_path.emplace(rec.path, rec.key);
    if (!fresh) {
      ps.duplicates.push_back({rec.key, it->second});
      continue;
    }
    in.records.push_back(rec);
  }
  for (const auto& rec : in.records) {
    in.scores.push_back(primary_scores(store, rec.key, phase, in.metrics));
    for (const auto& [k, v] : in.base)
      if (!in.scores.back().count(k) && !in.missing.count(k))
        throw Error(fmt::format("{}: config {} lacks item {}/{} in phase '{}'", store.path(),
                                rec.key, k.first, k.second, phase));
    for (const auto& [k, v] : in.scores.back())
      if (!in.base.count(k) && !in.missing.count(k))
        throw Error(fmt::format("{}: config {} has item {}/{} the baseline lacks in phase '{}'",
                                store.path(), rec.key, k.first, k.second, phase));
  }
  return in;
}

// One task's primary metric: the baseline's score and every config's comparison with it, added
// to `ps` (its task list, each config's tasks, the per-item values and the clusters).
void analyze_task(const PrimaryMetric& m, const PhaseInputs& in,
                  const std::map<ItemKey, std::string>& recorded_clusters, PhaseStats& ps) {
  const double sign = m.higher_is_better ? 1.0 : -1.0;
  TaskBaseline tb;
  tb.metric = m;
  std::vector<std::string> ids;
  std::vector<double> x, raw;
  for (const auto& k : in.missing) tb.missing += k.first == m.task;
  for (const auto& [k, v] : in.base) {
    if (k.first != m.task || in.missing.count(k)) continue;
    ids.push_back(k.second);
    x.push_back(sign * v);
    raw.push_back(v);
  }
  tb.n = x.size();
  tb.score = eval::mean(raw);
  tb.se = eval::standard_error(raw);
  if (std::isnan(tb.se)) tb.se = 0;
  auto cluster = dense_clusters(ids, m.task, recorded_clusters);
  tb.clusters = cluster.empty() ? 0 : *std::max_element(cluster.begin(), cluster.end()) + 1;
  const size_t n_configs = in.records.size();
  std::vector<std::vector<double>> ys(n_configs);
  for (size_t c = 0; c < n_configs; ++c)
    for (const auto& id : ids) ys[c].push_back(sign * in.scores[c].at({m.task, id}));
  const auto deltas = compare_to_baseline(x, ys, cluster, m.binary, tb.se, ps.seed);
  std::vector<double> ses, widening;
  for (size_t c = 0; c < n_configs; ++c) {
    ps.configs[c].tasks.push_back(deltas[c]);
    ps.configs[c].tasks.back().score = eval::mean(ys[c]) * sign;
    ps.items[in.records[c].key].push_back(ys[c]);
    ses.push_back(deltas[c].se);
    const double w_items = deltas[c].ci_hi_items - deltas[c].ci_lo_items;
    if (w_items > 0) widening.push_back((deltas[c].ci_hi - deltas[c].ci_lo) / w_items);
  }
  ps.items["baseline"].push_back(x);
  if (n_configs > 0 && tb.n > 0)
    tb.mde =
        eval::min_detectable_effect(median(ses), kAlpha / static_cast<double>(n_configs), kPower);
  if (!widening.empty()) tb.cluster_widening = eval::mean(widening);
  ps.cluster_of.push_back(std::move(cluster));
  ps.tasks.push_back(tb);
}

}  // namespace

PhaseStats analyze_phase(const Store& store, const std::string& phase) {
  PhaseStats ps;
  ps.phase = phase;
  ps.seed = scan_seed(store);
  const PhaseInputs in = read_phase(store, phase, ps);
  ps.configs.resize(in.records.size());
  for (size_t c = 0; c < in.records.size(); ++c) {
    ps.configs[c].config = Config::from_key(in.records[c].key);
    ps.configs[c].path = in.records[c].path;
    ps.configs[c].layer_evals = in.records[c].layer_evals;
    ps.configs[c].layer_evals_full = in.records[c].layer_evals_full;
  }
  const auto recorded_clusters = store.clusters();
  for (const auto& m : in.metrics) analyze_task(m, in, recorded_clusters, ps);
  // Each config's tasks combined: the mean z over tasks whose baseline varies.
  for (auto& c : ps.configs) {
    double sum = 0;
    int used = 0;
    for (size_t k = 0; k < ps.tasks.size(); ++k)
      if (ps.tasks[k].se > 0) sum += c.tasks[k].z, ++used;
    c.combined = used ? sum / used : 0;
  }
  mark_pareto(ps.configs);
  return ps;
}

std::vector<ConfigStats> ranked(const PhaseStats& stats) {
  auto out = stats.configs;
  std::stable_sort(out.begin(), out.end(), [](const ConfigStats& a, const ConfigStats& b) {
    if (a.combined != b.combined) return a.combined > b.combined;
    return !a.tasks.empty() && a.tasks[0].delta > b.tasks[0].delta;
  });
  return out;
}

std::vector<ConfigStats> ranked_on(const PhaseStats& stats, size_t task) {
  auto out = stats.configs;
  std::stable_sort(out.begin(), out.end(), [task](const ConfigStats& a, const ConfigStats& b) {
    return a.tasks[task].delta > b.tasks[task].delta;
  });
  return out;
}

std::vector<ControlStats> skip_controls(const PhaseStats& stats, size_t task,
                                        const std::vector<Config>& configs) {
  const bool binary = stats.tasks.at(task).metric.binary;
  std::vector<ControlStats> out;
  for (const Config& c : configs) {
    if (c.mode == Mode::Multi) continue;  // several blocks: no one skip to compare with
    Config skip{Mode::Skip, c.i, c.j, 0};
    auto a = stats.items.find(c.key()), s = stats.items.find(skip.key());
    if (a == stats.items.end() || s == stats.items.end()) continue;
    // The skip plays the baseline: delta = config - skip.
    auto d = compare_to_baseline(s->second[task], {a->second[task]}, stats.cluster_of[task], binary,
                                 0, stats.seed)[0];
    out.push_back({c, skip, d.delta, d.ci_lo, d.ci_hi, d.p_value, 1, ""});
  }
  std::vector<double> p;
  for (const auto& c : out) p.push_back(c.p_value);
  const auto holm = eval::holm_adjust(p);
  for (size_t k = 0; k < out.size(); ++k) {
    out[k].p_holm = holm[k];
    out[k].verdict = holm[k] >= kAlpha  ? "no difference"
                     : out[k].delta > 0 ? "beats skip"
                                        : "worse than skip";
  }
  return out;
}

Survival held_out_verdict(const TaskDelta& d, size_t n, size_t min_items) {
  if (n < min_items) return Survival::TooFewItems;
  return d.delta > 0 && d.p_gain_holm < kAlpha / 2 ? Survival::Survives : Survival::DoesNotSurvive;
}

const char* survival_name(Survival s) {
  switch (s) {
    case Survival::Survives:
      return "survives";
    case Survival::DoesNotSurvive:
      return "does not survive";
    case Survival::TooFewItems:
      return "too few items";
  }
  return "?";
}

}  // namespace reprise::scan
