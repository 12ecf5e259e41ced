// `--path auto:router.json` judged on a scan's held-out items: the routed entry the scan scored
// (`scan --validate N --path auto:FILE`, phase scan::kRoutedPhase) against the plain path, the
// best single path and the oracle, all from the same store. `reprise route eval` prints it; the
// scan prints it after its summary.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "route/prefix_features.h"
#include "route/routed_lm.h"
#include "route/router.h"
#include "scan/runner.h"
#include "scan/store.h"

namespace reprise::route {

// `scan --path SPEC`: the router of SPEC = auto:ROUTER.json as ScanOptions::routed, validated
// beside the top configs; empty for SPEC = "". Throws Error naming --path for any other SPEC.
scan::MakeRoutedEntry scan_routed_entry(const std::string& path_spec);

// The router as a scan's routed entry: a RoutedLM over its own PathRouter, keyed
// "auto:<file as given>". Throws Error (as PathRouter does) for a router of another model.
class RoutedScanEntry final : public scan::RoutedEntry {
 public:
  RoutedScanEntry(const Model& model, const std::string& router_file, const SessionOptions& opts);

  std::string key() const override { return "auto:" + file_; }
  std::vector<std::string> candidate_keys() const override {
    return router_->file().candidate_keys;
  }
  eval::LanguageModel& lm() override { return *lm_; }
  std::string chosen(const std::string& prompt) const override { return lm_->chosen(prompt); }
  // {"router", "feature_layer", "candidates": [{key, path}], "requests", "prefix_seconds",
  // "decide_seconds"}: the timing of the scoring so far.
  nlohmann::json describe() const override;

 private:
  std::string file_;
  std::unique_ptr<PathRouter> router_;
  std::unique_ptr<RoutedLM> lm_;
};

struct HeldOutEvaluation {
  std::string router_key;                // "auto:router.json"
  std::vector<std::string> candidates;   // candidate keys, the plain path first
  std::map<std::string, size_t> chosen;  // held-out items per chosen candidate
  std::vector<TaskComparison> tasks;     // held-out items only; best single chosen on search
  // Items whose routed score equals the validate-phase score of the candidate chosen for them
  // (the routed run is bit-identical to that path's, so all of them unless something is wrong).
  size_t agree = 0, items = 0;
  // Time per request (seconds): the router's decision (pooling + classifier), the prefix run it
  // reads (the chosen path reuses it), the whole routed request, and a request along the plain
  // path in the validate phase.
  int64_t requests = 0;
  double decide = 0, prefix = 0, routed = 0, plain = 0;
  bool beats_best_single = false;  // on every task the router-vs-best CI is above 0
  std::string verdict;
};

// Reads the routed entry and the validate phase of `store`. Each task's best single path is the
// validated config with the highest mean on the search items. Throws Error naming the store when
// it has no routed entry, or the validate phase lacks the plain path or a candidate.
HeldOutEvaluation evaluate_held_out(const scan::Store& store);

// The table and the lines around it, as `route eval` prints them.
std::string describe(const HeldOutEvaluation& e);

}  // namespace reprise::route
