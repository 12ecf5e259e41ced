// A per-input path router: which of a few candidate layer paths to run for a given prompt,
// predicted from the residual stream the plain path has after its first L layers (shared by
// every candidate, so the features cost no extra layer evaluations).
//
// Training data comes from a scan store (every config's score on every search item); the
// classifier is route/classifier.h's softmax regression, judged by k-fold cross-validation on
// the search items only. docs/router.md describes the method and its limits.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "route/classifier.h"

namespace reprise::route {

// What training needs, independent of any model: scores and features of the same items.
struct RouterData {
  std::vector<std::string> config_keys;   // scan config keys; [0] is the plain path ("baseline")
  std::vector<std::string> config_paths;  // canonical layer paths, parallel to config_keys
  std::vector<int> departs;               // first path position where each config leaves plain
  std::vector<std::string> item_task;     // per item: its task
  std::vector<std::string> item_id;       // per item: its id within the task
  // [item][config]: primary score, sign-adjusted so that higher is better; every value set
  // (scores_from_store leaves out items some config did not score).
  std::vector<std::vector<double>> score;
  Matrix features;  // [items, n_features]: filled by the caller (route/features.h)
};

// Greedy candidate choice on `score` ([item][config]): config 0 (plain) first, then repeatedly
// the eligible config that is strictly better than every chosen one on the most items (ties:
// the better mean score, then the lower index), until `k` are chosen or none wins an item.
// `eligible[c]` false excludes config c. Returns config indices.
std::vector<size_t> select_candidates(const std::vector<std::vector<double>>& score, size_t k,
                                      const std::vector<bool>& eligible);

// The label of one item: the candidate (index into `candidates`) with the best score, the
// earliest on ties, so an item no candidate improves is labelled the plain path.
size_t best_candidate(const std::vector<double>& item_scores,
                      const std::vector<size_t>& candidates);

struct TrainOptions {
  size_t paths = 4;  // K candidates, plain included
  // Judge the router on the scan's held-out (validate) items too; candidates are then chosen
  // among the configs the validate phase scored.
  bool held_out = false;
  int feature_layer = 0;  // L; 0 = the earliest departure among the chosen candidates
  int folds = 5;
  uint64_t seed = 1234;  // fold assignment and bootstrap
  FitOptions fit;
};

// One task's comparison on the search items, scores in the task's own (sign-adjusted) unit. The
// router's score is out-of-fold: each item routed by a model that never saw it.
struct TaskComparison {
  std::string task;
  size_t n = 0;
  double plain = 0, best_single = 0, router = 0, oracle = 0;
  std::string best_single_key;  // the candidate with the best mean on this task
  // 95% paired bootstrap CIs of router - best single and router - plain.
  double vs_best_lo = 0, vs_best_hi = 0, vs_plain_lo = 0, vs_plain_hi = 0;
  // Two-sided paired p of the same differences: exact McNemar on 0/1 scores, else paired t.
  double p_vs_best = 1, p_vs_plain = 1;
};

// One task's comparison from per-item columns (aligned, sign-adjusted): the plain path, the best
// single path (`best_key`), the router and the oracle. 95% paired bootstrap CIs (seeded) and
// two-sided paired p of router - best and router - plain.
TaskComparison compare_task(const std::string& task, const std::vector<double>& plain,
                            const std::vector<double>& best, const std::string& best_key,
                            const std::vector<double>& router, const std::vector<double>& oracle,
                            uint64_t seed);

// The table for items whose candidate scores are cand[item][candidate], routed to routed[item].
// The best single candidate of a task is best_single.at(task) when given (chosen on other items,
// as a held-out comparison must), else the best mean on these items.
std::vector<TaskComparison> compare_paths(const std::vector<std::string>& item_task,
                                          const std::vector<std::vector<double>>& cand,
                                          const std::vector<size_t>& routed,
                                          const std::vector<std::string>& cand_keys,
                                          const std::map<std::string, size_t>& best_single,
                                          uint64_t seed);

struct TrainResult {
  std::vector<size_t> candidates;  // indices into RouterData::config_keys
  int feature_layer = 0;
  SoftmaxModel model;      // fitted on every item
  double cv_accuracy = 0;  // out-of-fold accuracy of the label
  double chance = 0;       // share of the most frequent label (always guessing it)
  std::vector<size_t> labels, cv_predictions;
  std::vector<TaskComparison> tasks;
  std::vector<TaskComparison> held_out;  // the fitted router on held-out items, when asked
  bool beats_best_single = false;        // on every task the router-vs-best-single CI is above 0
  std::string verdict;                   // one sentence for the report
};

// Chooses candidates, L and the labels from data.score (features not needed yet: the caller
// computes them at result.feature_layer, then calls fit_router). Throws Error when there are
// fewer items than folds, or no eligible config beats the plain path on any item.
TrainResult choose_candidates(const RouterData& data, const TrainOptions& opts);
// Fits the classifier on data.features, cross-validates it, and fills the comparison.
void fit_router(const RouterData& data, const TrainOptions& opts, TrainResult& result);

// The router file: model checksum, candidates, L, standardisation, weights, CV figures.
struct RouterFile {
  std::string model_sha256;
  int feature_layer = 0;
  std::vector<std::string> candidate_keys, candidate_paths;
  SoftmaxModel model;
  double cv_accuracy = 0, chance = 0;
  // For people reading the file: {"verdict": sentence, "rows": [per task and item set ("search,
  // out-of-fold" or "held-out"): n, plain, best_single(_key), router, oracle, CIs]}.
  nlohmann::json report;
};

nlohmann::json to_json(const RouterFile& f);
// Throws Error naming `source` and the missing or bad field.
RouterFile router_from_json(const nlohmann::json& j, const std::string& source);
// Reads and checks a router file; throws Error naming the file on unreadable or corrupt JSON.
RouterFile load_router(const std::string& path);

// The comparisons as a text table, one row per task.
std::string comparison_table(const std::vector<TaskComparison>& tasks);

// The report `route train` prints: candidates, CV accuracy against chance, the per-task table
// and the verdict.
std::string describe(const RouterData& data, const TrainResult& r);

}  // namespace reprise::route
