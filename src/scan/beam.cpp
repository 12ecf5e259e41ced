#include "scan/beam.h"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <limits>
#include <map>
#include <numeric>
#include <random>
#include <set>

#include "eval/stats.h"
#include "scan/analysis.h"
#include "scan/store.h"
#include "util/error.h"

namespace reprise::scan {
namespace {

using eval::spearman;

constexpr double kRidgeLambda = 1.0;
constexpr size_t kNeighbours = 5;
const double kNaN = std::numeric_limits<double>::quiet_NaN();

// Solves a x = b for symmetric positive definite a (n x n, row-major) by Cholesky.
std::vector<double> solve_spd(std::vector<double> a, std::vector<double> b, size_t n) {
  for (size_t j = 0; j < n; ++j) {
    double d = a[j * n + j];
    for (size_t k = 0; k < j; ++k) d -= a[j * n + k] * a[j * n + k];
    d = std::sqrt(std::max(d, 1e-12));
    a[j * n + j] = d;
    for (size_t i = j + 1; i < n; ++i) {
      double s = a[i * n + j];
      for (size_t k = 0; k < j; ++k) s -= a[i * n + k] * a[j * n + k];
      a[i * n + j] = s / d;
    }
  }
  for (size_t i = 0; i < n; ++i) {  // L z = b
    for (size_t k = 0; k < i; ++k) b[i] -= a[i * n + k] * b[k];
    b[i] /= a[i * n + i];
  }
  for (size_t i = n; i-- > 0;) {  // L^T x = z
    for (size_t k = i + 1; k < n; ++k) b[i] -= a[k * n + i] * b[k];
    b[i] /= a[i * n + i];
  }
  return b;
}

// The seed ranking's prediction: the sum of the blocks' own targets.
double additive(const Config& c, const std::map<std::string, double>& by_key) {
  double s = 0;
  for (const Config& b : c.mode == Mode::Multi ? c.parts : std::vector<Config>{c})
    if (auto it = by_key.find(b.key()); it != by_key.end()) s += it->second;
  return s;
}

}  // namespace

void check_beam_options(const BeamOptions& o) {
  if (o.width < 1) throw Error(fmt::format("--beam must be >= 1, got {}", o.width));
  if (o.depth < 1) throw Error(fmt::format("--depth must be >= 1, got {}", o.depth));
  if (o.score < 1) throw Error(fmt::format("--beam-score must be >= 1, got {}", o.score));
  if (!(o.min_rho >= -1 && o.min_rho <= 1))
    throw Error(fmt::format("--surrogate-min-rho must be in [-1, 1], got {}", o.min_rho));
  if (o.surrogate != "ridge" && o.surrogate != "knn" && o.surrogate != "auto")
    throw Error(fmt::format("--surrogate: unknown '{}' (known: auto, ridge, knn)", o.surrogate));
  if (o.folds < 2) throw Error(fmt::format("surrogate folds must be >= 2, got {}", o.folds));
}

std::vector<double> path_features(const LayerPath& path, int n_layer) {
  std::vector<double> f(static_cast<size_t>(2 * n_layer + 1), 0.0);
  std::vector<double> visits(static_cast<size_t>(n_layer), 0.0);
  for (int p = 0; p < path.size(); ++p)
    if (path.layers[p] >= 0 && path.layers[p] < n_layer)
      visits[static_cast<size_t>(path.layers[p])] += path.alpha_at(p);
  std::vector<bool> seen(static_cast<size_t>(n_layer), false);
  for (int l : path.layers)
    if (l >= 0 && l < n_layer) seen[static_cast<size_t>(l)] = true;
  for (size_t l = 0; l < visits.size(); ++l) {
    f[l] = visits[l] - 1.0;
    f[static_cast<size_t>(n_layer) + l] = seen[l] ? 0.0 : 1.0;
  }
  f.back() = double(path.size()) / n_layer - 1.0;
  return f;
}

Surrogate::Surrogate(std::string kind) : kind_(std::move(kind)) {
  if (kind_ != "ridge" && kind_ != "knn")
    throw Error(fmt::format("--surrogate: unknown '{}' (known: ridge, knn)", kind_));
}

void Surrogate::fit(const std::vector<std::vector<double>>& x, const std::vector<double>& y) {
  if (x.empty() || x.size() != y.size()) throw Error("surrogate: no training rows");
  if (kind_ == "knn") {
    x_ = x, y_ = y;
    return;
  }
  const size_t n = x.size(), p = x[0].size();
  mean_x_.assign(p, 0.0);
  for (const auto& r : x)
    for (size_t k = 0; k < p; ++k) mean_x_[k] += r[k] / double(n);
  mean_y_ = std::accumulate(y.begin(), y.end(), 0.0) / double(n);
  std::vector<double> a(p * p, 0.0), b(p, 0.0);
  for (size_t i = 0; i < n; ++i)
    for (size_t r = 0; r < p; ++r) {
      const double xr = x[i][r] - mean_x_[r];
      if (xr == 0) continue;
      b[r] += xr * (y[i] - mean_y_);
      for (size_t c = 0; c < p; ++c) a[r * p + c] += xr * (x[i][c] - mean_x_[c]);
    }
  for (size_t r = 0; r < p; ++r) a[r * p + r] += kRidgeLambda;
  beta_ = solve_spd(std::move(a), std::move(b), p);
}

double Surrogate::predict(const std::vector<double>& x) const {
  if (kind_ == "ridge") {
    double s = mean_y_;
    for (size_t k = 0; k < beta_.size() && k < x.size(); ++k) s += beta_[k] * (x[k] - mean_x_[k]);
    return s;
  }
  std::vector<std::pair<double, size_t>> d;
  for (size_t i = 0; i < x_.size(); ++i) {
    double s = 0;
    for (size_t k = 0; k < x.size() && k < x_[i].size(); ++k)
      s += (x[k] - x_[i][k]) * (x[k] - x_[i][k]);
    d.push_back({s, i});
  }
  const size_t k = std::min(kNeighbours, d.size());
  std::partial_sort(d.begin(), d.begin() + static_cast<std::ptrdiff_t>(k), d.end());
  double s = 0;
  for (size_t i = 0; i < k; ++i) s += y_[d[i].second];
  return s / double(k);
}

double held_out_rho(const std::string& kind, const std::vector<std::vector<double>>& x,
                    const std::vector<double>& y, int folds, uint64_t seed) {
  const size_t n = x.size(), f = static_cast<size_t>(folds);
  if (n < 2 * f) return kNaN;
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  std::vector<double> pred(n);
  for (size_t k = 0; k < f; ++k) {
    std::vector<std::vector<double>> tx;
    std::vector<double> ty;
    for (size_t r = 0; r < n; ++r)
      if (r % f != k) tx.push_back(x[order[r]]), ty.push_back(y[order[r]]);
    Surrogate s(kind);
    s.fit(tx, ty);
    for (size_t r = k; r < n; r += f) pred[order[r]] = s.predict(x[order[r]]);
  }
  return spearman(pred, y);
}

std::vector<Config> expand_beam(int n_layer, const std::vector<Config>& beam,
                                const std::vector<Config>& blocks, int max_blocks,
                                std::vector<std::string>& seen) {
  std::set<std::string> known(seen.begin(), seen.end());
  std::vector<Config> out;
  for (const Config& b : beam)
    for (const Config& add : blocks) {
      auto c = compose(n_layer, {b, add});
      if (!c || c->mode != Mode::Multi || static_cast<int>(c->parts.size()) > max_blocks) continue;
      const std::string path = c->path(n_layer).canonical();
      if (!known.insert(path).second) continue;
      seen.push_back(path);
      out.push_back(*c);
    }
  return out;
}

BeamChoice choose_candidates(int n_layer, const std::vector<Config>& scored,
                             const std::vector<double>& targets,
                             const std::vector<Config>& candidates, const BeamOptions& o,
                             uint64_t seed) {
  BeamChoice ch;
  std::vector<std::vector<double>> x;
  for (const Config& c : scored) x.push_back(path_features(c.path(n_layer), n_layer));
  ch.rho_ridge = held_out_rho("ridge", x, targets, o.folds, seed);
  ch.rho_knn = held_out_rho("knn", x, targets, o.folds, seed);
  ch.model = o.surrogate;
  if (ch.model == "auto")  // NaN compares false: ridge unless knn is measurably better
    ch.model = ch.rho_knn > ch.rho_ridge ? "knn" : "ridge";
  ch.rho = ch.model == "ridge" ? ch.rho_ridge : ch.rho_knn;
  ch.trusted = !std::isnan(ch.rho) && ch.rho >= o.min_rho;
  std::vector<double> pred(candidates.size());
  if (ch.trusted) {
    Surrogate s(ch.model);
    s.fit(x, targets);
    for (size_t i = 0; i < candidates.size(); ++i)
      pred[i] = s.predict(path_features(candidates[i].path(n_layer), n_layer));
  } else {
    std::map<std::string, double> by_key;
    for (size_t i = 0; i < scored.size(); ++i) by_key[scored[i].key()] = targets[i];
    for (size_t i = 0; i < candidates.size(); ++i) pred[i] = additive(candidates[i], by_key);
  }
  std::vector<size_t> order(candidates.size());
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return pred[a] > pred[b]; });
  for (size_t r = 0; r < order.size() && static_cast<int>(r) < o.score; ++r) {
    ch.chosen.push_back(candidates[order[r]]);
    ch.predicted.push_back(pred[order[r]]);
  }
  return ch;
}

std::vector<double> beam_targets(const Store& store,
                                 const std::vector<std::pair<std::string, std::string>>& configs) {
  std::map<std::string, const PrimaryMetric*> primary;
  const auto metrics = primary_metrics(store);
  for (const auto& m : metrics) primary[m.task] = &m;
  using Item = std::pair<std::string, std::string>;  // task, item
  auto load = [&](const std::string& key, const std::string& phase) {
    std::map<Item, double> v;
    for (const auto& sc : store.scores(key, phase))
      if (auto it = primary.find(sc.task); it != primary.end() && it->second->metric == sc.metric)
        v[{sc.task, sc.item}] = sc.value;
    return v;
  };
  const auto base = load("baseline", "search");
  std::map<std::string, double> sd;  // per task, of the baseline's item scores
  for (const auto& m : metrics) {
    double s = 0, ss = 0, n = 0;
    for (const auto& [item, v] : base)
      if (item.first == m.task && !std::isnan(v)) s += v, ss += v * v, ++n;
    const double var = n > 1 ? (ss - s * s / n) / (n - 1) : 0;
    sd[m.task] = var > 0 ? std::sqrt(var) : 1.0;
  }
  std::vector<double> out;
  for (const auto& [key, phase] : configs) {
    const auto mine = load(key, phase);
    std::map<std::string, std::pair<double, double>> per_task;  // sum, count
    for (const auto& [item, b] : base) {
      auto it = mine.find(item);
      if (it == mine.end() || std::isnan(it->second) || std::isnan(b)) continue;
      double d = it->second - b;
      if (!primary.at(item.first)->higher_is_better) d = -d;
      per_task[item.first].first += d;
      per_task[item.first].second += 1;
    }
    double t = 0;
    for (const auto& [task, sc] : per_task) t += sc.first / sc.second / sd.at(task);
    out.push_back(per_task.empty() ? 0.0 : t / double(per_task.size()));
  }
  return out;
}

std::string describe_beam(const Store& store) {
  const auto raw = store.meta("beam");
  if (!raw) return "";
  const auto j = nlohmann::json::parse(*raw);
  auto num = [](const nlohmann::json& v) {
    return v.is_number() ? fmt::format("{:.3f}", v.get<double>()) : std::string("n/a");
  };
  std::string s = fmt::format(
      "beam search (W = {}, D = {}, K = {} scored per round; surrogate {}, trusted at held-out "
      "rho >= {}; {}-fold):\n",
      j.at("width").get<int>(), j.at("depth").get<int>(), j.at("score").get<int>(),
      j.at("surrogate").get<std::string>(), j.at("min_rho").get<double>(),
      j.at("folds").get<int>());
  int beam_configs = 0;
  for (const auto& r : j.at("rounds")) {
    beam_configs += static_cast<int>(r.at("scored").size());
    s += fmt::format(
        "  round {}: {} candidates from {} paths; held-out rho over {} scored configs: ridge {}, "
        "knn {}; {}; scored {}, rho of predicted vs measured {}; best so far {} (target "
        "{:+.4f})\n",
        r.at("round").get<int>(), r.at("candidates").get<int>(), r.at("beam").size(),
        r.at("trained_on").get<int>(), num(r.at("rho_ridge")), num(r.at("rho_knn")),
        r.at("trusted").get<bool>()
            ? fmt::format("{} trusted", r.at("model").get<std::string>())
            : std::string("surrogate NOT trusted, ranked by the sum of block scores"),
        r.at("scored").size(), num(r.at("rho_scored")), r.at("best").get<std::string>(),
        r.at("best_target").get<double>());
  }
  s += fmt::format(
      "  the {} beam configs are in the search phase beside the {} single-block seed configs, so "
      "the Holm family above counts every config the search scored\n",
      beam_configs, j.at("seeds").get<int>());
  return s;
}

}  // namespace reprise::scan
