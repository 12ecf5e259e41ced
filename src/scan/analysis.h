// Statistics of a scan store: every config against the baseline on the same items.
#pragma once

#include <string>
#include <vector>

#include "scan/plan.h"
#include "scan/store.h"

namespace reprise::scan {

// The metric a scan ranks by, per task (the task's primary metric).
struct PrimaryMetric {
  std::string task;
  std::string metric;
  bool binary = true;            // 0/1 scores: exact McNemar; else paired t-test
  bool higher_is_better = true;  // deltas are reported so that positive means better
};

struct ConfigStats {
  Config config;
  std::string path;
  size_t n = 0;              // items (pooled over tasks)
  double score = 0;          // mean primary score
  double delta = 0;          // mean(config - baseline), sign-adjusted so positive = better
  double ci_lo = 0, ci_hi = 0;  // paired bootstrap 95% CI of delta
  double p_value = 1;        // exact McNemar (binary) or paired t-test (continuous)
  double p_holm = 1, p_bh = 1;  // adjusted across the configs of the phase
  int64_t layer_evals = 0, layer_evals_full = 0;
};

struct PhaseStats {
  std::string phase;
  double baseline_score = 0;
  size_t n = 0;
  std::vector<ConfigStats> configs;  // excluding the baseline, in store order
};

// Primary metrics as recorded in the store's "primary_metrics" meta entry.
std::vector<PrimaryMetric> primary_metrics(const Store& store);

// Stats of every config of `phase` against that phase's baseline. Throws Error if the phase has
// no baseline or a config's items differ from the baseline's.
PhaseStats analyze_phase(const Store& store, const std::string& phase, uint64_t seed = 1234);

// Configs sorted by delta, best first.
std::vector<ConfigStats> ranked(const PhaseStats& stats);

}  // namespace reprise::scan
