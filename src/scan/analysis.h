// Statistics of a scan store: every config against the baseline on the same items, task by task
// in each task's own metric (never pooled across tasks), with the corrections that make a
// reported gain trustworthy. docs/evaluation.md ("Scan statistics") states the rules.
#pragma once

#include <cstdint>
#include <limits>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "scan/plan.h"
#include "scan/store.h"

namespace reprise::scan {

// Level of every test and of every Holm-adjusted decision (two-sided).
inline constexpr double kAlpha = 0.05;
// Power the minimum-detectable-effect line is computed for.
inline constexpr double kPower = 0.8;
// Fewest held-out items of a task for a "survives" verdict: below it the paired tests have too
// little power for a survival to mean much, and the report says "too few items" instead.
inline constexpr size_t kMinHeldOut = 30;

// The metric a scan ranks by, per task (the task's primary metric).
struct PrimaryMetric {
  std::string task;
  std::string metric;
  bool binary = true;            // 0/1 scores: exact McNemar; else paired t-test
  bool higher_is_better = true;  // deltas are reported so that positive means better
};

// One config against the baseline on one task, in that task's unit.
struct TaskDelta {
  double score = 0;             // mean primary score of the config (raw, not sign-adjusted)
  double delta = 0;             // mean(config - baseline), sign-adjusted so positive = better
  double ci_lo = 0, ci_hi = 0;  // 95% bootstrap CI of delta (unadjusted; by cluster if any)
  double ci_lo_items = 0, ci_hi_items = 0;  // the same resampling items (= above without clusters)
  double se = 0;                            // bootstrap standard error of delta
  double p_value = 1;           // exact McNemar (binary) or paired t-test (continuous), two-sided
  double p_holm = 1, p_bh = 1;  // adjusted across every config of the phase, for this task
  // One-sided p of a gain (config better than baseline): p / 2 when delta > 0, else 1 - p / 2
  // (both tests are symmetric), and its Holm adjustment across the phase's configs.
  double p_gain = 1, p_gain_holm = 1;
  double z = 0;  // delta / the baseline's standard error: unit-free
};

struct ConfigStats {
  Config config;
  std::string path;
  std::vector<TaskDelta> tasks;  // parallel to PhaseStats::tasks
  // Mean of the tasks' z (tasks whose baseline has no spread left out): the explicit unit-free
  // ranking across tasks; with one task it orders configs as its delta does.
  double combined = 0;
  bool pareto = false;  // no other config is at least as good on every task and better on one
  int64_t layer_evals = 0, layer_evals_full = 0;
};

struct TaskBaseline {
  PrimaryMetric metric;
  size_t n = 0;         // items every config was compared on
  size_t clusters = 0;  // units those items form (n when every item is its own)
  size_t missing = 0;   // items left out because some config of the phase scored them NaN
  double score = 0;     // baseline mean (raw)
  double se = 0;        // standard error of the baseline mean (0: no spread)
  // Smallest true gain the phase's test would detect with 80% power at alpha / m (m = configs
  // compared, Holm's strictest step), from the median standard error of the configs' deltas.
  double mde = std::numeric_limits<double>::quiet_NaN();
  // Mean ratio of clustered to item-level CI width over the configs (1 without clusters).
  double cluster_widening = 1;
};

struct PhaseStats {
  std::string phase;
  uint64_t seed = 0;                 // the bootstrap seed, as recorded in the store
  std::vector<TaskBaseline> tasks;   // in the store's primary_metrics order
  std::vector<ConfigStats> configs;  // excluding the baseline, in store order
  // Configs of the store whose layer path another config already has (e.g. loop:i:j:2 and
  // repeat:i:j): (dropped key, kept key). Each path is counted once in the corrections.
  std::vector<std::pair<std::string, std::string>> duplicates;

  // Sign-adjusted per-item scores, per config key then task, aligned with `cluster_of` (for
  // comparisons between two configs, e.g. the skip controls).
  std::map<std::string, std::vector<std::vector<double>>> items;
  std::vector<std::vector<size_t>> cluster_of;  // per task: dense cluster id of each item
};

// Primary metrics as recorded in the store's "primary_metrics" meta entry.
std::vector<PrimaryMetric> primary_metrics(const Store& store);
// The seed the scan ran with (recorded in the store's identity): every statistic uses it.
uint64_t scan_seed(const Store& store);

// Stats of every config of `phase` against that phase's baseline. Throws Error if the phase has
// no baseline or a config's items differ from the baseline's.
PhaseStats analyze_phase(const Store& store, const std::string& phase);

// The core of analyze_phase for one task: each of `configs` against `baseline` (sign-adjusted
// scores of the same items), bootstrapped by `cluster` (dense ids, one per item), Holm and BH
// across the configs. `baseline_se` scales z.
std::vector<TaskDelta> compare_to_baseline(std::span<const double> baseline,
                                           const std::vector<std::vector<double>>& configs,
                                           std::span<const size_t> cluster, bool binary,
                                           double baseline_se, uint64_t seed,
                                           int resamples = 10000);

// Configs sorted by `combined` (then by the first task's delta), best first.
std::vector<ConfigStats> ranked(const PhaseStats& stats);
// Configs sorted by their delta on task `task`, best first.
std::vector<ConfigStats> ranked_on(const PhaseStats& stats, size_t task);

// Repeat (or loop) against its skip control, item by item on one task.
struct ControlStats {
  Config config, skip;
  double delta = 0;                // mean(config - skip), sign-adjusted
  double ci_lo = 0, ci_hi = 0;     // 95% bootstrap CI (by cluster if any)
  double p_value = 1, p_holm = 1;  // paired test; Holm across the task's controls
  std::string verdict;             // "beats skip", "no difference", "worse than skip"
};

// For each of `configs` whose skip control is in `stats`, the paired comparison on task `task`.
std::vector<ControlStats> skip_controls(const PhaseStats& stats, size_t task,
                                        const std::vector<Config>& configs);

// Held-out verdict of one config on one task: it survives when its gain is significant after
// Holm across every validated config at one-sided level kAlpha / 2 (p_gain_holm < 0.025: under
// the null, the chance that any validated config survives is at most 2.5%, the level of the
// old "95% CI above 0" rule per config), on at least `min_items` held-out items.
enum class Survival { Survives, DoesNotSurvive, TooFewItems };
Survival held_out_verdict(const TaskDelta& d, size_t n, size_t min_items = kMinHeldOut);
const char* survival_name(Survival s);  // "survives", "does not survive", "too few items"

}  // namespace reprise::scan
