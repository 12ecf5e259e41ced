// Adaptive racing: configs are scored on growing batches of items, and after each batch those a
// confidence sequence shows to be worse are dropped (scan --strategy race).
//
// Per item, a config's paired difference to the baseline on the task's primary metric is signed
// so that positive = better and bounded: 0/1 metrics by nature (bound 1), others clipped at
// +-clip (--race-clip, 1 in the metric's unit). A sequence for values in [-B, B] cannot be
// narrower than about log(1/delta) / (c n) of B, so with log-likelihoods, whose per-item
// differences between two paths are often a tenth of a nat, a fixed clip of 1 keeps configs that
// are only a little worse running for hundreds of items. Under --race-clip auto (the default) a
// second sequence runs beside it, on bounds fitted to each config: per config and task the
// largest |difference| of its first batch, at most the clip. The first batch only chooses those
// bounds, so that sequence starts after it (a bound chosen from the values it bounds would not
// be a bound), while the fixed-clip one uses every item and drops a far worse config as early as
// before. Each sequence then runs at delta / 2.
// At look k with n items a config is dropped when, in either sequence,
//   (a) the upper confidence bound of its mean difference to the baseline is below 0, or
//   (b) the upper bound of its mean difference to the current best (highest mean) is below
//       -margin (in the metric's unit),
// unless it is among the `keep` configs of highest running mean: those stay, so a race in which
// every config is below the baseline still ranks its best few on every item.
// Bounds come from the predictable plug-in empirical-Bernstein confidence sequence of
// Waudby-Smith & Ramdas ("Estimating means of bounded random variables by betting", JRSS-B 2024,
// Theorem 2, one-sided form), at level delta = alpha / m, m = the number of configs in the race.
// The sequence holds at every n at once, so looking after every batch costs nothing extra, and
// the true best config takes part in at most m comparisons (its baseline one and one per rival),
// so it is dropped with probability <= alpha.
// Items are taken as independent draws; items that share a unit (a passage, a story) make the
// bounds somewhat optimistic.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <vector>

namespace reprise::scan {

struct RaceOptions {
  double alpha = 0.05;    // chance of dropping the true best config, at most
  double margin = 0;      // tolerated shortfall to the current best, in the metric's unit
  bool auto_clip = true;  // continuous metrics: bounds from each config's first batch (above)
  double clip = 1;        // continuous differences clipped at +-clip (the metric's unit)
  size_t keep = 5;        // the configs of highest running mean are never dropped (0 = none kept)
  size_t first = 16;      // items per task in the first batch
  double growth = 2;      // each look multiplies the items per task by this
};

// Items per task scored after each look: first, first * growth, ... up to `n_items`. Throws
// Error naming the option for first < 2 or growth <= 1.
std::vector<size_t> race_schedule(size_t n_items, const RaceOptions& o);

// Upper end of the one-sided confidence sequence for the mean of `x` (observed in this order,
// values in [lo, hi]) at error `delta`: with probability >= 1 - delta the mean lies below it for
// every prefix of the sequence at once. `hi` for an empty x.
double eb_upper(const std::vector<double>& x, double lo, double hi, double delta);

struct RaceDrop {
  size_t config = 0;   // index into the rows given to race_look
  std::string reason;  // "below baseline" or "below best (repeat:3:5)"
};

// What one raced config has shown so far, items in the order they were scored (every row of a
// look the same items).
struct RaceEvidence {
  std::vector<double> diff;   // signed difference to the baseline, positive = better (unclipped)
  std::vector<double> clip;   // per item: 1 for 0/1 metrics, --race-clip for others
  std::vector<double> bound;  // per item: race_bound (auto), or empty: no second sequence
};

// The bound of one config's differences on a continuous task: the fixed clip, or under auto_clip
// the largest |difference| of its first batch (`first_batch`), at most the clip (the clip if they
// are all 0).
double race_bound(std::span<const double> first_batch, const RaceOptions& o);

// One look of a race: `names` label the rows in the reasons; `m` is the number of configs the
// race started with; the sequence on `bound` uses items [skip, n) (skip: the items that chose the
// bounds), the one on `clip` every item.
std::vector<RaceDrop> race_look(const std::vector<RaceEvidence>& rows,
                                const std::vector<std::string>& names, size_t m, size_t skip,
                                const RaceOptions& o);

}  // namespace reprise::scan
