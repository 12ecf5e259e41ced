// Adaptive racing: configs are scored on growing batches of items, and after each batch those a
// confidence sequence shows to be worse are dropped (scan --strategy race).
//
// Per item, a config's paired difference to the baseline on the task's primary metric is signed
// so that positive = better and mapped into [-1, 1]: binary metrics as they are, others clipped at
// +-clip and divided by clip. At look k with n items a config is dropped when
//   (a) the upper confidence bound of its mean difference to the baseline is below 0, or
//   (b) the upper bound of its mean difference to the current best (highest mean) is below
//       -margin,
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
#include <string>
#include <vector>

namespace reprise::scan {

struct RaceOptions {
  double alpha = 0.05;  // chance of dropping the true best config, at most
  double margin = 0;    // tolerated shortfall to the current best, in mapped units
  double clip = 1;      // continuous metrics: differences clipped at +-clip, then divided by it
  size_t keep = 5;      // the configs of highest running mean are never dropped (0 = none kept)
  size_t first = 16;    // items per task in the first batch
  double growth = 2;    // each look multiplies the items per task by this
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

// One look (1-based `look`) of a race: d[c][i] is config c's mapped difference to the baseline
// on item i (every row the same length); `names` label the rows in the reasons; `m` is the
// number of configs the race started with.
std::vector<RaceDrop> race_look(const std::vector<std::vector<double>>& d,
                                const std::vector<std::string>& names, int look, size_t m,
                                const RaceOptions& o);

}  // namespace reprise::scan
