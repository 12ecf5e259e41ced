// Runs a task on a LanguageModel and keeps every per-item score, then summarises them in the
// shape lm-evaluation-harness uses (per task: metric, value, stderr, n).
#pragma once

#include <nlohmann/json.hpp>

#include <functional>
#include <iosfwd>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "eval/language_model.h"
#include "eval/task.h"

namespace reprise::eval {

struct ItemRecord {
  std::string id;
  // Fingerprint of the requests, the gold answer and the prompt format: equal only for the same
  // item posed the same way.
  std::string doc_hash;
  std::vector<double> values;  // per TaskInfo::metrics
  std::string prediction, gold;
  std::string prompt;  // the first request's context as the model read it (chat-wrapped or not)
  // lm-eval's logged "arguments" ({"gen_args_K": {"arg_0": context, "arg_1": continuation or
  // generation settings}}, texts as the model read them) and "resps" (each request's response,
  // as strings).
  nlohmann::json arguments, resps;
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
  std::string prompt_format = "plain";  // LanguageModel::prompt_format() of the run
  size_t n_available = 0;               // items in the task before --limit
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

// Several tasks in turn through one model (`reprise eval`).
struct SuiteOptions {
  size_t limit = 0;         // first N items of each task; 0 = all
  size_t batch_items = 16;  // as EvalOptions
  // Items finished so far across all tasks, and the running task's name.
  std::function<void(size_t done, const std::string& task)> progress;
  std::function<void(const TaskResult&)> on_task_done;  // e.g. to log its samples
};
std::vector<TaskResult> evaluate_suite(std::span<const std::unique_ptr<Task>> tasks,
                                       LanguageModel& lm, const SuiteOptions& opts);
// Items evaluate_suite() scores: each task's first `limit` (0 = all).
size_t suite_items(std::span<const std::unique_ptr<Task>> tasks, size_t limit);

// Hex FNV-1a of the task name, every request's fields, the gold answer and the prompt format
// (left out when "plain", so plain runs keep the hashes they always had).
std::string doc_hash(const std::string& task, std::span<const Request> requests,
                     const std::string& gold, std::string_view prompt_format = "plain");

// Means and standard errors of each metric over `items`.
std::vector<MetricSummary> summarize(const TaskInfo& info, std::span<const ItemRecord> items);

// What results_json records about the run besides the tasks.
struct RunInfo {
  nlohmann::json config;      // lm-eval's "config" (model, model_args, limit, ...) plus reprise's
  std::string model_name;     // "model_name"
  double date = 0;            // "date": the start, Unix seconds
  double seconds = 0;         // "total_evaluation_time_seconds"
  std::string chat_template;  // the chat family, "" for plain prompts ("chat_template": null)
  std::vector<TaskGroup> groups;  // lm-eval groups asked for: rows in "results" and "groups"
};

// What a run of `reprise eval` was: the settings its results file records under "config".
struct RunSettings {
  std::string model_path, model_name;
  std::string path_label;          // the canonical layer path (or the --path spec when routed)
  nlohmann::json path_layers;      // physical layer per position; null when routed
  std::string task_spec;           // --task as given (lm-eval groups are read from it)
  std::vector<std::string> tasks;  // resolve_task_names(task_spec)
  int64_t limit = -1;              // -1: every item
  uint64_t seed = 1234;
  int batch_items = 16;
  int n_ctx = 0;
  std::string prompt_format;  // LanguageModel::prompt_format()
  std::string chat_family;    // "" for plain prompts
  std::string chat_system;
};

// The RunInfo of a run that started at `start_unix` (Unix seconds) and took `seconds`: lm-eval's
// "config" fields first, then reprise's, "date_iso" the time of this call. `reprise eval -o` and
// the Python package's evaluate() both write it, so their files have the same keys.
RunInfo run_info(const RunSettings& s, double start_unix, double seconds);

// lm-evaluation-harness's results file: "results" ({task: {"alias", "<metric>,<filter>",
// "<metric>_stderr,<filter>"}}, an undefined stderr written "N/A" as lm-eval does),
// "group_subtasks", "configs", "versions", "n-shot", "higher_is_better", "n-samples", "config",
// "model_name", "date", "total_evaluation_time_seconds", "chat_template"; each group of
// run.groups gets lm-eval's group row in "results" and "groups" (the size-weighted mean and
// pooled standard error of its metrics over the subtasks that ran); plus reprise's
// "metric_kinds" and (with_samples) "samples": every item's id, hash, metrics (by
// MetricInfo::id), prediction and gold, so `reprise compare` can pair two runs.
nlohmann::ordered_json results_json(std::span<const TaskResult> results, const RunInfo& run,
                                    bool with_samples = true);

// The --log-samples lines of one item: one per filter, as lm-eval logs them (doc_id, doc, target,
// arguments, resps, filtered_resps, filter, metrics, doc_hash, prompt_hash, target_hash and each
// metric's value under its name), plus reprise's task, id, metric_kinds and higher_is_better (by
// MetricInfo::id), path, prompt_format, prediction and details. doc_hash is reprise's item
// fingerprint (above), not lm-eval's hash of the dataset record.
std::vector<nlohmann::ordered_json> sample_lines(const TaskResult& task, const ItemRecord& item,
                                                 size_t doc_id, const std::string& path_label);
// Writes every item's sample_lines() as JSON lines (invalid UTF-8 replaced) and flushes;
// `path_label` names the path each item ran along.
void write_sample_lines(std::ostream& out, const TaskResult& task,
                        const std::function<std::string(const ItemRecord&)>& path_label);

// The summary table printed after a run (markdown, one row per task and metric).
std::string summary_table(std::span<const TaskResult> results);

}  // namespace reprise::eval
