#include "route/router.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <map>
#include <sstream>

#include "eval/stats.h"
#include "util/error.h"

namespace reprise::route {

std::vector<size_t> select_candidates(const std::vector<std::vector<double>>& score, size_t k,
                                      const std::vector<bool>& eligible) {
  const size_t n_configs = score.empty() ? eligible.size() : score[0].size();
  std::vector<size_t> chosen = {0};
  std::vector<double> mean(n_configs, 0.0);
  for (const auto& row : score)
    for (size_t c = 0; c < n_configs; ++c) mean[c] += row[c];
  while (chosen.size() < k) {
    size_t best = n_configs, best_wins = 0;
    for (size_t c = 1; c < n_configs; ++c) {
      if (!eligible[c] || std::find(chosen.begin(), chosen.end(), c) != chosen.end()) continue;
      size_t wins = 0;
      for (const auto& row : score) {
        double top = row[chosen[0]];
        for (size_t s : chosen) top = std::max(top, row[s]);
        wins += row[c] > top;
      }
      if (wins > best_wins || (wins == best_wins && wins > 0 && mean[c] > mean[best]))
        best = c, best_wins = wins;
    }
    if (best == n_configs) break;
    chosen.push_back(best);
  }
  return chosen;
}

size_t best_candidate(const std::vector<double>& item_scores,
                      const std::vector<size_t>& candidates) {
  size_t best = 0;
  for (size_t k = 1; k < candidates.size(); ++k)
    if (item_scores[candidates[k]] > item_scores[candidates[best]]) best = k;
  return best;
}

TrainResult choose_candidates(const RouterData& data, const TrainOptions& opts) {
  const size_t n = data.score.size();
  if (n < static_cast<size_t>(std::max(opts.folds, 2)))
    throw Error(fmt::format("{} items scored by every config; cross-validation needs at least {}",
                            n, std::max(opts.folds, 2)));
  if (opts.paths < 2) throw Error(fmt::format("--paths must be >= 2, got {}", opts.paths));
  TrainResult r;
  // With L given, only configs that still follow the plain path through layer L can share its
  // prefix; without it, configs that depart at position 0 share nothing.
  std::vector<bool> eligible(data.config_keys.size());
  for (size_t c = 0; c < eligible.size(); ++c)
    eligible[c] = data.departs[c] >= std::max(opts.feature_layer, 1);
  r.candidates = select_candidates(data.score, opts.paths, eligible);
  if (r.candidates.size() < 2)
    throw Error(fmt::format(
        "no config of the store beats the plain path on any item{}; there is nothing to route",
        opts.feature_layer
            ? fmt::format(" among those that depart at layer {} or later", opts.feature_layer)
            : ""));
  r.feature_layer = opts.feature_layer;
  if (r.feature_layer == 0) {
    r.feature_layer = data.departs[r.candidates[1]];
    for (size_t c : r.candidates)
      if (c != 0) r.feature_layer = std::min(r.feature_layer, data.departs[c]);
  }
  for (const auto& row : data.score) r.labels.push_back(best_candidate(row, r.candidates));
  return r;
}

void fit_router(const RouterData& data, const TrainOptions& opts, TrainResult& r) {
  const size_t n = data.score.size(), k = r.candidates.size();
  if (data.features.rows != n)
    throw Error(fmt::format("{} feature rows for {} items", data.features.rows, n));
  r.model = fit_softmax(data.features, r.labels, k, opts.fit);
  r.cv_predictions = cross_validate(data.features, r.labels, k, opts.folds, opts.seed, opts.fit);
  std::vector<size_t> count(k, 0);
  size_t right = 0;
  for (size_t i = 0; i < n; ++i) {
    ++count[r.labels[i]];
    right += r.cv_predictions[i] == r.labels[i];
  }
  r.cv_accuracy = static_cast<double>(right) / static_cast<double>(n);
  r.chance =
      static_cast<double>(*std::max_element(count.begin(), count.end())) / static_cast<double>(n);

  std::vector<std::vector<double>> cand;
  for (size_t i = 0; i < n; ++i) {
    cand.emplace_back();
    for (size_t c : r.candidates) cand.back().push_back(data.score[i][c]);
  }
  std::vector<std::string> keys;
  for (size_t c : r.candidates) keys.push_back(data.config_keys[c]);
  r.tasks = compare_paths(data.item_task, cand, r.cv_predictions, keys, {}, opts.seed);
  r.beats_best_single = true;
  for (const auto& t : r.tasks) r.beats_best_single = r.beats_best_single && t.vs_best_lo > 0;
  r.verdict = r.beats_best_single
                  ? "the router beats the best single path on every task (95% CI above 0)"
                  : fmt::format(
                        "the router does not beat the best single path (cross-validated "
                        "accuracy {:.3f} against {:.3f} for always choosing the commonest label)",
                        r.cv_accuracy, r.chance);
}

TaskComparison compare_task(const std::string& task, const std::vector<double>& plain,
                            const std::vector<double>& best, const std::string& best_key,
                            const std::vector<double>& router, const std::vector<double>& oracle,
                            uint64_t seed) {
  eval::BootstrapOptions bo;
  bo.seed = seed;
  TaskComparison t;
  t.task = task;
  t.n = plain.size();
  t.plain = eval::mean(plain);
  t.best_single = eval::mean(best);
  t.best_single_key = best_key;
  t.router = eval::mean(router);
  t.oracle = eval::mean(oracle);
  const auto vb = eval::paired_bootstrap_ci(best, router, bo);
  const auto vp = eval::paired_bootstrap_ci(plain, router, bo);
  t.vs_best_lo = vb.lo, t.vs_best_hi = vb.hi, t.vs_plain_lo = vp.lo, t.vs_plain_hi = vp.hi;
  // Scores that are all 0 or 1 in magnitude come from a binary metric (sign-adjusted ones are
  // 0 / -1): McNemar wants them as 0/1.
  bool binary = true;
  for (const auto* col : {&plain, &best, &router})
    for (double v : *col) binary = binary && (v == 0 || std::fabs(v) == 1);
  auto magnitude = [&](std::vector<double> v) {
    if (binary)
      for (double& x : v) x = std::fabs(x);
    return v;
  };
  t.p_vs_best = eval::paired_p_value(magnitude(best), magnitude(router), binary);
  t.p_vs_plain = eval::paired_p_value(magnitude(plain), magnitude(router), binary);
  return t;
}

std::vector<TaskComparison> compare_paths(const std::vector<std::string>& item_task,
                                          const std::vector<std::vector<double>>& cand,
                                          const std::vector<size_t>& routed,
                                          const std::vector<std::string>& cand_keys,
                                          const std::map<std::string, size_t>& best_single,
                                          uint64_t seed) {
  std::map<std::string, std::vector<size_t>> by_task;
  for (size_t i = 0; i < item_task.size(); ++i) by_task[item_task[i]].push_back(i);
  const size_t k = cand_keys.size();
  std::vector<TaskComparison> out;
  for (const auto& [task, items] : by_task) {
    std::vector<std::vector<double>> col(k);
    std::vector<double> router, oracle;
    for (size_t i : items) {
      for (size_t c = 0; c < k; ++c) col[c].push_back(cand[i][c]);
      router.push_back(cand[i][routed[i]]);
      oracle.push_back(*std::max_element(cand[i].begin(), cand[i].end()));
    }
    size_t best = 0;
    if (auto it = best_single.find(task); it != best_single.end()) {
      best = it->second;
    } else {
      for (size_t c = 1; c < k; ++c)
        if (eval::mean(col[c]) > eval::mean(col[best])) best = c;
    }
    out.push_back(compare_task(task, col[0], col[best], cand_keys[best], router, oracle, seed));
  }
  return out;
}

nlohmann::json to_json(const RouterFile& f) {
  nlohmann::json cands = nlohmann::json::array();
  for (size_t c = 0; c < f.candidate_keys.size(); ++c)
    cands.push_back({{"key", f.candidate_keys[c]}, {"path", f.candidate_paths[c]}});
  return {{"format", "reprise-router"},
          {"version", 1},
          {"model_sha256", f.model_sha256},
          {"feature_layer", f.feature_layer},
          {"features", "mean over the prompt tokens of the residual stream after layer L"},
          {"candidates", cands},
          {"classifier",
           {{"type", "softmax regression"},
            {"mean", f.model.mean},
            {"scale", f.model.scale},
            {"weights", f.model.weights},
            {"bias", f.model.bias}}},
          {"cv_accuracy", f.cv_accuracy},
          {"chance", f.chance},
          {"report", f.report}};
}

RouterFile router_from_json(const nlohmann::json& j, const std::string& source) {
  auto field = [&](const nlohmann::json& obj, const char* name) -> const nlohmann::json& {
    if (!obj.is_object() || !obj.contains(name))
      throw Error(fmt::format("{}: not a router file (no '{}')", source, name));
    return obj.at(name);
  };
  try {
    if (field(j, "format") != "reprise-router")
      throw Error(fmt::format("{}: not a router file (format is not 'reprise-router')", source));
    RouterFile f;
    f.model_sha256 = field(j, "model_sha256").get<std::string>();
    f.feature_layer = field(j, "feature_layer").get<int>();
    for (const auto& c : field(j, "candidates")) {
      f.candidate_keys.push_back(field(c, "key").get<std::string>());
      f.candidate_paths.push_back(field(c, "path").get<std::string>());
    }
    const auto& cl = field(j, "classifier");
    f.model.mean = field(cl, "mean").get<std::vector<double>>();
    f.model.scale = field(cl, "scale").get<std::vector<double>>();
    f.model.weights = field(cl, "weights").get<std::vector<double>>();
    f.model.bias = field(cl, "bias").get<std::vector<double>>();
    f.model.n_classes = f.model.bias.size();
    f.model.n_features = f.model.mean.size();
    f.cv_accuracy = field(j, "cv_accuracy").get<double>();
    f.chance = j.value("chance", 0.0);
    f.report = j.value("report", nlohmann::json());
    if (f.feature_layer < 1)
      throw Error(fmt::format("{}: feature_layer must be >= 1, got {}", source, f.feature_layer));
    if (f.candidate_keys.size() < 2 || f.model.n_classes != f.candidate_keys.size() ||
        f.model.scale.size() != f.model.n_features ||
        f.model.weights.size() != f.model.n_classes * f.model.n_features)
      throw Error(fmt::format(
          "{}: classifier sizes disagree ({} candidates, {} biases, {} means, {} scales, {} "
          "weights)",
          source, f.candidate_keys.size(), f.model.n_classes, f.model.n_features,
          f.model.scale.size(), f.model.weights.size()));
    return f;
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: bad router file: {}", source, e.what()));
  }
}

RouterFile load_router(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw Error(fmt::format("{}: cannot read the router file", path));
  std::stringstream ss;
  ss << in.rdbuf();
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(ss.str());
  } catch (const nlohmann::json::exception& e) {
    throw Error(fmt::format("{}: not valid JSON ({})", path, e.what()));
  }
  return router_from_json(j, path);
}

std::string comparison_table(const std::vector<TaskComparison>& tasks) {
  std::string out = fmt::format(
      "{:<20} {:>5} {:>8} {:>12} {:>8} {:>8}  {:<22} {:>6}  {:<22} {:>6}\n", "task", "n", "plain",
      "best single", "router", "oracle", "router-best [95% CI]", "p", "router-plain [95% CI]", "p");
  for (const auto& t : tasks)
    out += fmt::format(
        "{:<20} {:>5} {:>8.4f} {:>12.4f} {:>8.4f} {:>8.4f}  [{:+.4f}, {:+.4f}]    {:>6.3f}  "
        "[{:+.4f}, {:+.4f}]    {:>6.3f}\n",
        t.task, t.n, t.plain, t.best_single, t.router, t.oracle, t.vs_best_lo, t.vs_best_hi,
        t.p_vs_best, t.vs_plain_lo, t.vs_plain_hi, t.p_vs_plain);
  return out;
}

std::string describe(const RouterData& data, const TrainResult& r) {
  std::string out = fmt::format("candidates (feature layer L = {}):\n", r.feature_layer);
  std::vector<size_t> count(r.candidates.size(), 0);
  for (size_t l : r.labels) ++count[l];
  for (size_t c = 0; c < r.candidates.size(); ++c)
    out +=
        fmt::format("  {}  {:<16} {:<28} best on {} items\n", c, data.config_keys[r.candidates[c]],
                    data.config_paths[r.candidates[c]], count[c]);
  out += fmt::format("cross-validated accuracy: {:.3f} (chance, the commonest label: {:.3f})\n",
                     r.cv_accuracy, r.chance);
  out += comparison_table(r.tasks) + "(search items; the router's scores are out-of-fold)\n";
  if (!r.held_out.empty())
    out += comparison_table(r.held_out) +
           "(held-out items: the router fitted on every search item; best single chosen on the "
           "search items)\n";
  return out + r.verdict + "\n";
}

}  // namespace reprise::route
