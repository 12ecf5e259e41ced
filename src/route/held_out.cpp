#include "route/held_out.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "eval/stats.h"
#include "scan/analysis.h"
#include "util/error.h"

namespace reprise::route {
namespace {

using ItemKey = std::pair<std::string, std::string>;  // (task, item)

eval::SessionLMOptions lm_options(const SessionOptions& opts) {
  eval::SessionLMOptions o;
  o.session = opts;
  return o;
}

}  // namespace

RoutedScanEntry::RoutedScanEntry(const Model& model, const std::string& router_file,
                                 const SessionOptions& opts)
    : file_(router_file),
      router_(open_router(model, router_file, opts)),
      lm_(std::make_unique<RoutedLM>(model, *router_, lm_options(opts))) {}

nlohmann::json RoutedScanEntry::describe() const {
  nlohmann::json cands = nlohmann::json::array();
  const RouterFile& f = router_->file();
  for (size_t c = 0; c < f.candidate_keys.size(); ++c)
    cands.push_back({{"key", f.candidate_keys[c]}, {"path", f.candidate_paths[c]}});
  int64_t requests = 0;
  for (const auto& [key, n] : lm_->counts()) requests += n;
  return {{"router", file_},
          {"feature_layer", f.feature_layer},
          {"candidates", cands},
          {"requests", requests},
          {"prefix_seconds", router_->timing().prefix_seconds},
          {"decide_seconds", router_->timing().decide_seconds}};
}

scan::MakeRoutedEntry scan_routed_entry(const std::string& path_spec) {
  const std::string router_file = auto_router_file(path_spec);
  if (!path_spec.empty() && router_file.empty())
    throw Error(fmt::format(
        "--path '{}': a scan runs its own paths; --path takes only auto:ROUTER.json (a router "
        "validated beside the top configs, with --validate N)",
        path_spec));
  if (router_file.empty()) return {};
  return [router_file](const Model& m, const SessionOptions& so) {
    return std::make_unique<RoutedScanEntry>(m, router_file, so);
  };
}

namespace {

using Scores = std::map<ItemKey, double>;
using Metrics = std::map<std::string, scan::PrimaryMetric>;  // by task

// Primary scores of one config in one phase, sign-adjusted so higher is better; NaN left out.
Scores primary_scores(const scan::Store& store, const Metrics& metric, const std::string& key,
                      const std::string& phase) {
  Scores out;
  for (const scan::ItemScore& s : store.scores(key, phase)) {
    auto m = metric.find(s.task);
    if (m == metric.end() || s.metric != m->second.metric || std::isnan(s.value)) continue;
    out[{s.task, s.item}] = m->second.higher_is_better ? s.value : -s.value;
  }
  return out;
}

// The router's choice per held-out item, as an index into `candidates`.
std::map<ItemKey, size_t> router_choices(const scan::Store& store, const nlohmann::json& meta,
                                         const std::vector<std::string>& candidates) {
  std::map<ItemKey, size_t> choice;
  for (const auto& c : meta.at("choices")) {
    const std::string key = c.at("candidate");
    const auto at = std::find(candidates.begin(), candidates.end(), key);
    if (at == candidates.end())
      throw Error(fmt::format("{}: the routed entry chose '{}', not one of its candidates",
                              store.path(), key));
    choice[{c.at("task"), c.at("item")}] = static_cast<size_t>(at - candidates.begin());
  }
  return choice;
}

// Each task's best single path: the validated config with the best mean on the search items
// (chosen where the router was trained, as a held-out comparison must).
std::map<std::string, std::string> best_single_paths(const scan::Store& store,
                                                     const Metrics& metric,
                                                     const std::vector<std::string>& validated) {
  std::map<std::string, std::string> best_key;
  std::map<std::string, double> best_mean;
  for (const std::string& key : validated) {
    std::map<std::string, std::pair<double, size_t>> sum;  // task -> (sum, n)
    for (const auto& [item, v] : primary_scores(store, metric, key, "search")) {
      sum[item.first].first += v;
      ++sum[item.first].second;
    }
    for (const auto& [task, sn] : sum) {
      const double mean = sn.first / static_cast<double>(sn.second);
      if (!best_key.count(task) || mean > best_mean[task]) {
        best_key[task] = key;
        best_mean[task] = mean;
      }
    }
  }
  return best_key;
}

// Per task, the four columns compared on the held-out items every one of them has.
struct Columns {
  std::map<std::string, std::vector<double>> plain, best, router, oracle;
};

// The time per request of the routed run and its parts, from the routed entry's record, beside
// the plain path's validate time over the same items (so the same requests).
void read_timing(const nlohmann::json& meta, double plain_seconds, HeldOutEvaluation& e) {
  e.requests = meta.value("requests", int64_t{0});
  if (e.requests <= 0) return;
  const double n = static_cast<double>(e.requests);
  e.decide = meta.value("decide_seconds", 0.0) / n;
  e.prefix = meta.value("prefix_seconds", 0.0) / n;
  e.routed = meta.value("seconds", 0.0) / n;
  e.plain = plain_seconds / n;
}

}  // namespace

HeldOutEvaluation evaluate_held_out(const scan::Store& store) {
  const auto raw = store.meta("routed");
  if (!raw)
    throw Error(
        fmt::format("{}: no routed entry (run the scan with --validate N --path auto:ROUTER.json)",
                    store.path()));
  const auto meta = nlohmann::json::parse(*raw);
  HeldOutEvaluation e;
  e.router_key = meta.at("key");
  for (const auto& c : meta.at("candidates")) e.candidates.push_back(c.at("key"));

  Metrics metric;
  for (const auto& m : scan::primary_metrics(store)) metric[m.task] = m;
  std::vector<std::string> validated;
  std::map<std::string, double> seconds;  // per validated key
  for (const auto& rec : store.configs("validate")) {
    validated.push_back(rec.key);
    seconds[rec.key] = rec.seconds;
  }
  auto held_out_scores = [&](const std::string& key) {
    if (std::find(validated.begin(), validated.end(), key) == validated.end())
      throw Error(
          fmt::format("{}: '{}' has no held-out scores (the validate phase did not score it)",
                      store.path(), key));
    return primary_scores(store, metric, key, "validate");
  };
  const Scores plain = held_out_scores("baseline");
  std::vector<Scores> cand;
  for (const std::string& key : e.candidates) cand.push_back(held_out_scores(key));
  const Scores routed = primary_scores(store, metric, e.router_key, scan::kRoutedPhase);
  const std::map<ItemKey, size_t> choice = router_choices(store, meta, e.candidates);
  const std::map<std::string, std::string> best_key = best_single_paths(store, metric, validated);
  std::map<std::string, Scores> best_scores;
  for (const auto& [task, key] : best_key)
    if (!best_scores.count(key)) best_scores[key] = primary_scores(store, metric, key, "validate");

  Columns col;
  for (const auto& [item, r] : routed) {
    const auto ch = choice.find(item);
    const auto bk = best_key.find(item.first);
    if (ch == choice.end() || bk == best_key.end() || !plain.count(item)) continue;
    const Scores& bs = best_scores.at(bk->second);
    if (!bs.count(item)) continue;
    double oracle = -INFINITY;  // the best candidate for this item, in hindsight
    const bool complete = std::all_of(cand.begin(), cand.end(), [&](const Scores& c) {
      const auto it = c.find(item);
      if (it != c.end()) oracle = std::max(oracle, it->second);
      return it != c.end();
    });
    if (!complete) continue;
    ++e.items;
    ++e.chosen[e.candidates[ch->second]];
    e.agree += cand[ch->second].at(item) == r;
    col.plain[item.first].push_back(plain.at(item));
    col.best[item.first].push_back(bs.at(item));
    col.router[item.first].push_back(r);
    col.oracle[item.first].push_back(oracle);
  }
  if (e.items == 0)
    throw Error(
        fmt::format("{}: no held-out item has scores of the routed entry, the plain path, "
                    "the best single path and every candidate",
                    store.path()));
  const uint64_t seed = scan::scan_seed(store);
  for (const auto& [task, p] : col.plain)
    e.tasks.push_back(compare_task(task, p, col.best[task], best_key.at(task), col.router[task],
                                   col.oracle[task], seed));
  read_timing(meta, seconds.at("baseline"), e);
  e.beats_best_single = true;
  for (const auto& t : e.tasks) e.beats_best_single = e.beats_best_single && t.vs_best_lo > 0;
  e.verdict = e.beats_best_single
                  ? "on held-out items the router beats the best single path on every task (95% "
                    "CI above 0)"
                  : "on held-out items the router does not beat the best single path";
  return e;
}

std::string describe(const HeldOutEvaluation& e) {
  std::string out = fmt::format("router {} on {} held-out items; chosen:", e.router_key, e.items);
  for (const std::string& c : e.candidates)
    out += fmt::format(" {} {}", c, e.chosen.count(c) ? e.chosen.at(c) : 0);
  out += "\n" + comparison_table(e.tasks);
  out +=
      "(best single: the validated config with the best mean on the search items; router: the "
      "routed run's own scores; oracle: each item's best candidate)\n";
  out += fmt::format(
      "routed scores equal the validated score of the chosen candidate on {}/{} items\n", e.agree,
      e.items);
  if (e.requests > 0)
    out += fmt::format(
        "time per request ({} requests): router decision {:.3f} ms (pooling + classifier: the "
        "cost of routing), its prefix run {:.3f} ms (reused by the chosen path); routed request "
        "{:.3f} ms, plain path {:.3f} ms (validate phase)\n",
        e.requests, e.decide * 1e3, e.prefix * 1e3, e.routed * 1e3, e.plain * 1e3);
  return out + e.verdict + "\n";
}

}  // namespace reprise::route
