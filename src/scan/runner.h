// Runs a scan: the baseline and every planned config on the same items, each config starting
// from the baseline's cached residual stream where their paths part (engine/prefix_cache.h),
// every per-item score stored as soon as its config finishes.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <memory>

#include "engine/session.h"
#include "eval/language_model.h"
#include "eval/task.h"
#include "scan/beam.h"
#include "scan/plan.h"
#include "scan/race.h"

namespace reprise::scan {

// The store phase of a routed entry's held-out scores, beside "validate" (which holds only layer
// paths, so the scan's analysis of it is unchanged).
inline constexpr const char* kRoutedPhase = "validate-routed";

// A validated entry that is not one layer path: the router of `scan --path auto:FILE`, which the
// CLI builds (route/ sits above scan/). Its candidates are validated like the top configs, then
// it is scored on the same held-out items as phase kRoutedPhase; what it chose per item and its
// timing go to the store's meta key "routed".
class RoutedEntry {
 public:
  virtual ~RoutedEntry() = default;
  virtual std::string key() const = 0;  // the store's config key, e.g. "auto:router.json"
  // Its candidates as scan config keys (Config::key()), validated with the top configs.
  virtual std::vector<std::string> candidate_keys() const = 0;
  virtual eval::LanguageModel& lm() = 0;
  // The candidate key it chose for an item, by the item's prompt (eval::ItemRecord::prompt).
  virtual std::string chosen(const std::string& prompt) const = 0;
  // What to record beside the choices: the router file, its timing.
  virtual nlohmann::json describe() const = 0;
};
using MakeRoutedEntry =
    std::function<std::unique_ptr<RoutedEntry>(const Model& model, const SessionOptions& opts)>;

struct ScanOptions {
  std::filesystem::path model;
  std::string tasks;     // --task spec (comma-separated, groups allowed)
  size_t limit = 0;      // search items per task; 0 = all
  uint64_t seed = 1234;  // probes and bootstrap
  PlanOptions plan;
  std::string strategy = "dense";  // or "coarse-to-fine", "race", "beam"
  RaceOptions race;                // --strategy race
  BeamOptions beam;                // --strategy beam
  int coarse_stride = 0;           // 0 = about N / 6 (beam: 0 = the dense grid)
  int refine_top = 3;              // seeds per mode for the fine stage
  int validate = 0;                // re-score the top N on held-out items
  size_t validate_limit = 0;       // held-out items per task; 0 = same as limit
  int controls = 5;                // score skip:i:j beside the top N repeat configs
  std::filesystem::path store;
  SessionOptions session;
  uint64_t cache_bytes = uint64_t{4} << 30;
  bool quiet = false;  // no progress bar
  // Made once the model is loaded, before the store is touched (so a bad router file costs
  // nothing); needs validate > 0. Empty: no routed entry.
  MakeRoutedEntry routed;
};

struct ScanTotals {
  int configs_run = 0, configs_skipped = 0;  // skipped = already done in the store (resume)
  int64_t layer_evals = 0;                   // with prefix reuse, including the baseline runs
  int64_t layer_evals_full = 0;  // what running every config from the embeddings would cost
  // The same two per task kind (TaskInfo::output_type: "multiple_choice", "generate_until", ...),
  // so the saving of prefix reuse can be read per kind.
  std::map<std::string, std::pair<int64_t, int64_t>> layer_evals_by_kind;
  int64_t item_evals = 0;  // (config, item) pairs scored in the search, this run
  double seconds = 0;
  std::string packed_weights;  // PackedWeights::describe() of the scan's session ("" if none)
};

// What a run did, in lines: configs scored and resumed, item evaluations, seconds, and the layer
// evaluations prefix reuse saved per task kind.
std::string describe(const ScanTotals& totals);

class Cluster;

// The held-out items of `t` for validation: `want` indices after its first `searched` items,
// skipping (and counting in `skipped`) any whose requests equal a searched item's or an earlier
// held-out item's, or that share a unit (eval::Task::cluster_id: a passage, a story) with a
// searched item, so that validation never re-scores what the search saw. Throws Error when the
// task has too few such items.
std::vector<size_t> held_out_items(const eval::Task& t, size_t searched, size_t want,
                                   size_t& skipped);

// The checksum a scan store records of its model (sha256 of the GGUF file, or of the
// safetensors and config.json of an HF directory): what `analyze --against` checks.
std::string model_fingerprint(const Model& m);

// Throws Error on bad options, an incompatible store, or unusable tasks.
ScanTotals run_scan(const ScanOptions& opts);
// The same across the ranks of `cluster` (scan/cluster.h): rank 0 owns the store and returns the
// totals; the other ranks score their share and return empty totals.
ScanTotals run_scan(const ScanOptions& opts, Cluster& cluster);
// The same across the ranks of the job this process was started in (Cluster::from_environment:
// MPI under mpirun, else one process). Ranks sharing a machine split its cores when
// opts.session.n_threads is 0; a rank that fails prints its error and ends the whole job rather
// than leave the others waiting. Rank 0's totals; nullopt on the other ranks.
std::optional<ScanTotals> run_scan_in_job(ScanOptions opts);

}  // namespace reprise::scan
