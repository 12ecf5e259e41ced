#include "analyze/predict.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <limits>
#include <numeric>
#include <random>

#include "scan/analysis.h"
#include "scan/store.h"
#include "util/error.h"

namespace reprise::analyze {
namespace {

using eval::average_ranks;
using eval::pearson;

Prediction rank(std::string method, std::vector<BlockScore> blocks) {
  // Ties go to the shorter block, then the earlier one, so the order never depends on the sort.
  std::sort(blocks.begin(), blocks.end(), [](const BlockScore& a, const BlockScore& b) {
    if (a.score != b.score) return a.score > b.score;
    if (a.j - a.i != b.j - b.i) return a.j - a.i < b.j - b.i;
    return a.i < b.i;
  });
  return {std::move(method), std::move(blocks)};
}

// C(n, k) as a double (exact for the small grids analyzed here).
double choose(int n, int k) {
  if (k < 0 || k > n) return 0;
  double c = 1;
  for (int t = 1; t <= k; ++t) c = c * (n - k + t) / t;
  return c;
}

}  // namespace

Prediction predict_drift(const Diagnostics& d) {
  std::vector<BlockScore> blocks;
  for (int i = 0; i < d.n_layer; ++i)
    for (int j = i + 1; j <= d.n_layer; ++j) blocks.push_back({i, j, -d.drift[i][j]});
  return rank("drift", std::move(blocks));
}

Prediction predict_stability(const Diagnostics& d) {
  const int N = d.n_layer;
  std::vector<double> g(N, 0.0);
  for (int l = 0; l < N && N >= 2; ++l) {
    const int a = std::max(l - 1, 0), b = std::min(l + 1, N - 1);
    g[l] = std::abs(d.layers[b].rel_update - d.layers[a].rel_update) / (b - a);
  }
  std::vector<BlockScore> blocks;
  for (int i = 0; i < N; ++i) {
    for (int j = i + 1; j <= N; ++j) {
      double s = 0;
      for (int l = i; l < j; ++l) s += g[l];
      blocks.push_back({i, j, -s / (j - i)});
    }
  }
  return rank("stability", std::move(blocks));
}

Validation validate(const Prediction& p, const std::vector<MeasuredDelta>& measured, int radius,
                    const std::vector<int>& ks) {
  Validation v;
  v.method = p.method;
  v.radius = radius;
  std::vector<double> pred, meas;
  std::vector<BlockScore> ranked;  // predicted ranking restricted to measured blocks
  for (const BlockScore& b : p.ranked) {
    for (const MeasuredDelta& m : measured) {
      if (m.i == b.i && m.j == b.j) {
        pred.push_back(b.score);
        meas.push_back(m.delta);
        ranked.push_back(b);
        if (v.n == 0 || m.delta > v.best.delta) v.best = m;
        ++v.n;
      }
    }
  }
  if (v.n == 0) throw Error("--against: the scan measured none of the predicted blocks");
  v.spearman = spearman(pred, meas);
  if (std::isfinite(v.spearman)) {
    // Permutation test: how often shuffled measurements correlate at least as strongly.
    std::mt19937_64 rng(1234);
    const auto rp = average_ranks(pred);
    auto rm = average_ranks(meas);
    const int n_perm = 20000;
    int extreme = 0;
    for (int k = 0; k < n_perm; ++k) {
      std::shuffle(rm.begin(), rm.end(), rng);
      if (std::abs(pearson(rp, rm)) >= std::abs(v.spearman) - 1e-12) ++extreme;
    }
    v.spearman_p = (1.0 + extreme) / (1.0 + n_perm);
  }
  auto near = [&](const BlockScore& b) {
    return std::abs(b.i - v.best.i) <= radius && std::abs(b.j - v.best.j) <= radius;
  };
  const int n = static_cast<int>(ranked.size());
  const int m = static_cast<int>(std::count_if(ranked.begin(), ranked.end(), near));
  for (int k : ks) {
    HitAtK h;
    h.k = k;
    const int kk = std::min(k, n);
    h.hit = std::any_of(ranked.begin(), ranked.begin() + kk, near);
    h.chance = 1.0 - choose(n - m, kk) / choose(n, kk);
    v.hits.push_back(h);
  }
  return v;
}

ScanMeasurements load_scan(const std::string& path, int n_layer, const std::string& model_sha256) {
  if (!std::filesystem::is_regular_file(path))
    throw Error(fmt::format("--against {}: no such scan store", path));
  scan::Store store(path);
  ScanMeasurements out;
  auto nl = store.meta("n_layer");
  if (!nl) throw Error(fmt::format("{}: not a scan store (no n_layer)", path));
  if (*nl != std::to_string(n_layer))
    throw Error(fmt::format("{}: scan of a {}-layer model, this model has {}", path, *nl, n_layer));
  out.model_name = store.meta("model_name").value_or("");
  if (auto sha = store.meta("model_sha256"); !sha || *sha != model_sha256)
    throw Error(fmt::format(
        "{}: a scan of another model ({}, sha256 {}), not of this one "
        "(sha256 {}); give --against a scan of this model file",
        path, out.model_name, sha ? sha->substr(0, 12) : "unrecorded", model_sha256.substr(0, 12)));
  out.limit = store.meta("limit").value_or("");
  for (const auto& pm : scan::primary_metrics(store))
    out.tasks += (out.tasks.empty() ? "" : ",") + pm.task;
  for (const auto& rec : store.configs("search")) out.seconds += rec.seconds;
  auto stats = scan::analyze_phase(store, "search");
  for (const auto& c : stats.configs)
    if (c.config.mode == scan::Mode::Repeat && c.config.k == 2)
      out.deltas.push_back(
          {c.config.i, c.config.j, stats.tasks.size() == 1 ? c.tasks[0].delta : c.combined});
  if (out.deltas.empty()) throw Error(fmt::format("{}: the scan has no repeat configs", path));
  return out;
}

}  // namespace reprise::analyze
