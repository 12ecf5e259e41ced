// Circuit prediction from the diagnostics alone (no task scoring per config), and its check
// against a real scan store. The methods are defined in docs/analyze.md.
#pragma once

#include <string>
#include <vector>

#include "analyze/diagnostics.h"
#include "eval/stats.h"

namespace reprise::analyze {

// A candidate block i..j-1 (the scan's repeat config (i, j)); higher score = predicted better.
struct BlockScore {
  int i = 0, j = 0;
  double score = 0;
};

struct Prediction {
  std::string method;              // "drift" (primary) or "stability"
  std::vector<BlockScore> ranked;  // every 0 <= i < j <= N, best first (ties: shorter, earlier)
};

// Primary: score(i, j) = −drift[i][j], the relative displacement the repeated block adds to the
// stream under the first-order (parallel) approximation.
Prediction predict_drift(const Diagnostics& d);
// CircuitProbe-style stability zones: score(i, j) = −mean over l in [i, j) of |dr/dl|, r the
// relative update per layer (central differences, one-sided at the ends).
Prediction predict_stability(const Diagnostics& d);

struct MeasuredDelta {
  int i = 0, j = 0;
  double delta = 0;  // scan delta vs baseline, positive = better
};

struct HitAtK {
  int k = 0;
  bool hit = false;
  double chance = 0;  // probability that k blocks drawn at random hit
};

struct Validation {
  std::string method;
  size_t n = 0;              // configs both predicted and measured
  double spearman = 0;       // between predicted score and measured delta
  double spearman_p = 1;     // two-sided permutation p-value
  MeasuredDelta best;        // the measured best block
  int radius = 2;            // hit window in i and j
  std::vector<HitAtK> hits;  // k = 1, 3, 5
};

// Spearman's rho (eval/stats.h).
using eval::spearman;

Validation validate(const Prediction& p, const std::vector<MeasuredDelta>& measured, int radius = 2,
                    const std::vector<int>& ks = {1, 3, 5});

// Repeat (k = 2) deltas of a scan store's "search" phase (a one-task scan: the task's delta; a
// multi-task scan: the unit-free combined score) and the scan's compute time (sum of the
// configs' seconds, baseline included). Throws Error naming the file when it is not a scan of
// this model: n_layer layers and the checksum `model_sha256` (scan::model_fingerprint).
struct ScanMeasurements {
  std::vector<MeasuredDelta> deltas;
  double seconds = 0;
  std::string model_name;
  std::string tasks;
  std::string limit;
};
ScanMeasurements load_scan(const std::string& path, int n_layer, const std::string& model_sha256);

}  // namespace reprise::analyze
