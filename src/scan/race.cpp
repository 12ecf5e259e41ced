#include "scan/race.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "util/error.h"

namespace reprise::scan {

std::vector<size_t> race_schedule(size_t n_items, const RaceOptions& o) {
  if (o.first < 2) throw Error("--race-first must be >= 2");
  if (!(o.growth > 1)) throw Error("--race-growth must be > 1");
  std::vector<size_t> out;
  for (double n = static_cast<double>(o.first);; n *= o.growth) {
    const size_t k = std::min(n_items, static_cast<size_t>(std::ceil(n)));
    if (out.empty() || k > out.back()) out.push_back(k);
    if (k == n_items) return out;
  }
}

double eb_upper(const std::vector<double>& x, double lo, double hi, double delta) {
  // Lower bound for y = (hi - x) / (hi - lo) in [0, 1], turned back into an upper one for x.
  const double log_inv = std::log(1 / delta), c = 0.5;
  double sum_y = 0, sum_sq = 0;  // running sums for the plug-in mean and variance
  double sum_l = 0, sum_ly = 0, sum_penalty = 0;
  for (size_t i = 1; i <= x.size(); ++i) {
    const double y = std::clamp((hi - x[i - 1]) / (hi - lo), 0.0, 1.0);
    const double ti = static_cast<double>(i);
    const double mean_prev = (0.5 + sum_y) / ti, var_prev = (0.25 + sum_sq) / ti;
    const double lambda = std::min(std::sqrt(2 * log_inv / (var_prev * ti * std::log1p(ti))), c);
    const double v = 4 * (y - mean_prev) * (y - mean_prev);
    sum_l += lambda;
    sum_ly += lambda * y;
    sum_penalty += v * (-std::log1p(-lambda) - lambda) / 4;
    sum_y += y;
    const double mean_now = (0.5 + sum_y) / (ti + 1);
    sum_sq += (y - mean_now) * (y - mean_now);
  }
  if (sum_l == 0) return hi;
  const double y_lower = std::max(0.0, (sum_ly - log_inv - sum_penalty) / sum_l);
  return hi - (hi - lo) * y_lower;
}

namespace {

double mean_of(const std::vector<double>& x) {
  return x.empty() ? 0 : std::accumulate(x.begin(), x.end(), 0.0) / static_cast<double>(x.size());
}

}  // namespace

std::vector<RaceDrop> race_look(const std::vector<std::vector<double>>& d,
                                const std::vector<std::string>& names, int look, size_t m,
                                const RaceOptions& o) {
  std::vector<RaceDrop> out;
  if (d.empty()) return out;
  (void)look;  // the sequence is valid at every n: no share of alpha per look
  const double delta = o.alpha / static_cast<double>(std::max<size_t>(m, 1));
  std::vector<size_t> order(d.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return mean_of(d[a]) > mean_of(d[b]); });
  const size_t best = order[0];
  std::vector<bool> kept(d.size());
  for (size_t r = 0; r < std::min(o.keep, order.size()); ++r) kept[order[r]] = true;
  for (size_t c = 0; c < d.size(); ++c) {
    if (kept[c]) continue;
    if (eb_upper(d[c], -1, 1, delta) < 0) {
      out.push_back({c, "below baseline"});
      continue;
    }
    if (c == best) continue;
    std::vector<double> gap(d[c].size());  // config - best, in [-2, 2]
    for (size_t i = 0; i < gap.size(); ++i) gap[i] = d[c][i] - d[best][i];
    if (eb_upper(gap, -2, 2, delta) < -o.margin)
      out.push_back({c, "below best (" + names[best] + ")"});
  }
  return out;
}

}  // namespace reprise::scan
