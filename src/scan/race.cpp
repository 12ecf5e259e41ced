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

double race_bound(std::span<const double> first_batch, const RaceOptions& o) {
  double b = 0;
  if (o.auto_clip)
    for (double x : first_batch) b = std::max(b, std::abs(x));
  return b > 0 ? std::min(b, o.clip) : o.clip;
}

namespace {

// Mean of the differences clipped at +-clip: the running score that ranks the configs.
double clipped_mean(const RaceEvidence& e) {
  double sum = 0;
  for (size_t i = 0; i < e.diff.size(); ++i) sum += std::clamp(e.diff[i], -e.clip[i], e.clip[i]);
  return e.diff.empty() ? 0 : sum / static_cast<double>(e.diff.size());
}

// One of a look's two sequences: the per-item bounds it clips at and the items it starts from.
struct Sequence {
  std::vector<double> RaceEvidence::*bounds;
  size_t from;
  double delta;

  // Upper bound of the mean difference to the baseline, in units of each item's bound.
  double upper(const RaceEvidence& e) const {
    const auto& b = e.*bounds;
    std::vector<double> unit;
    for (size_t i = from; i < e.diff.size(); ++i)
      unit.push_back(std::clamp(e.diff[i], -b[i], b[i]) / b[i]);
    return eb_upper(unit, -1, 1, delta);
  }
  // Upper bound of the mean difference of e to `best`, in the metric's unit: each item's lies
  // within +-(its bound + the best's), and the widest of those is the sequence's range.
  double upper_gap(const RaceEvidence& e, const RaceEvidence& best) const {
    const auto &b = e.*bounds, &bb = best.*bounds;
    std::vector<double> gap;
    double range = 0;
    for (size_t i = from; i < e.diff.size(); ++i) {
      gap.push_back(std::clamp(e.diff[i], -b[i], b[i]) - std::clamp(best.diff[i], -bb[i], bb[i]));
      range = std::max(range, b[i] + bb[i]);
    }
    return range > 0 ? eb_upper(gap, -range, range, delta) : 0;
  }
};

}  // namespace

std::vector<RaceDrop> race_look(const std::vector<RaceEvidence>& rows,
                                const std::vector<std::string>& names, size_t m, size_t skip,
                                const RaceOptions& o) {
  std::vector<RaceDrop> out;
  if (rows.empty()) return out;
  // The sequences are valid at every n: no share of alpha per look; two sequences halve it.
  const bool fitted = !rows[0].bound.empty();
  const double delta = o.alpha / static_cast<double>(std::max<size_t>(m, 1)) / (fitted ? 2.0 : 1.0);
  std::vector<Sequence> sequences = {{&RaceEvidence::clip, 0, delta}};
  if (fitted) sequences.push_back({&RaceEvidence::bound, skip, delta});
  std::vector<size_t> order(rows.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return clipped_mean(rows[a]) > clipped_mean(rows[b]);
  });
  const size_t best = order[0];
  std::vector<bool> kept(rows.size());
  for (size_t r = 0; r < std::min(o.keep, order.size()); ++r) kept[order[r]] = true;
  for (size_t c = 0; c < rows.size(); ++c) {
    if (kept[c]) continue;
    auto any = [&](auto&& below) {
      return std::any_of(sequences.begin(), sequences.end(), [&](const Sequence& s) {
        return s.from < rows[c].diff.size() && below(s);
      });
    };
    if (any([&](const Sequence& s) { return s.upper(rows[c]) < 0; })) {
      out.push_back({c, "below baseline"});
      continue;
    }
    if (c == best) continue;
    if (any([&](const Sequence& s) { return s.upper_gap(rows[c], rows[best]) < -o.margin; }))
      out.push_back({c, "below best (" + names[best] + ")"});
  }
  return out;
}

}  // namespace reprise::scan
