// Runs a task on a LanguageModel and keeps every per-item score, then summarises them in the
// shape lm-evaluation-harness uses (per task: metric, value, stderr, n).
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <span>
#include <string>
#include <vector>

#include "eval/language_model.h"
#include "eval/task.h"

namespace reprise::eval {

struct ItemRecord {
  std::string id;
  std::string doc_hash;        // fingerprint of the requests and gold: equal only for the same item
  std::vector<double> values;  // per TaskInfo::metrics
  std::string prediction, gold;
  std::string prompt;  // the first request's context (for the samples log)
  nlohmann::json details;
};

struct MetricSummary {
  MetricInfo info;
  double value = 0;      // mean over items
  double std_error = 0;  // standard error of the mean (NaN for one item)
  size_t n = 0;
};

struct TaskResult {
  TaskInfo info;
  size_t n_available = 0;  // items in the task before --limit
  std::vector<ItemRecord> items;
  std::vector<MetricSummary> metrics;
  std::vector<std::pair<std::string, double>> aggregates;  // Task::aggregates
  double seconds = 0;
};

struct EvalOptions {
  size_t limit = 0;         // first N items; 0 = all
  size_t batch_items = 16;  // items whose requests go to the model in one batch
  // Called with the number of items finished in this task so far: after each batch, and within
  // it as the model answers requests (LanguageModel::on_request_done), counting the items' worth
  // of requests answered. Never called twice with the same number.
  std::function<void(size_t done)> progress;
};

TaskResult evaluate(const Task& task, LanguageModel& lm, const EvalOptions& opts = {});

// Hex FNV-1a of the task name, every request's fields and the gold answer.
std::string doc_hash(const std::string& task, std::span<const Request> requests,
                     const std::string& gold);

// Means and standard errors of each metric over `items`.
std::vector<MetricSummary> summarize(const TaskInfo& info, std::span<const ItemRecord> items);

// {"results": {task: {"alias", "<metric>,none", "<metric>_stderr,none", ..., "n"}},
//  "n-samples", "higher_is_better", "metric_kinds", "configs", "config", "samples"?}.
// `config` describes the run (model, path, limit, seed, ...); samples hold every item's id,
// hash, metrics, prediction and gold so `reprise compare` can pair two runs.
nlohmann::ordered_json results_json(std::span<const TaskResult> results,
                                    const nlohmann::json& config, bool with_samples = true);

// One line of --log-samples: the item record with its task, metric kinds and run label.
nlohmann::ordered_json sample_json(const TaskResult& task, const ItemRecord& item,
                                   const std::string& path_label);

// The summary table printed after a run (markdown, one row per task and metric).
std::string summary_table(std::span<const TaskResult> results);

}  // namespace reprise::eval
