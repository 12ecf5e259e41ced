// Paired comparison of two evaluation runs, item by item (`reprise compare`).
//
// For every task and metric: the mean difference B - A, a paired bootstrap CI, an exact McNemar
// test (binary metrics) or a paired t-test (continuous ones), and Holm's adjustment of each
// metric's p-values across tasks. Runs whose items differ are refused: same tasks, same item
// ids, same item fingerprints (doc_hash), or an Error says what differs.
#pragma once

#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "eval/stats.h"
#include "eval/task.h"

namespace reprise::eval {

struct RunTask {
  std::vector<MetricInfo> metrics;
  std::vector<std::string> ids;
  std::vector<std::string> hashes;
  std::vector<std::vector<double>> values;  // [item][metric]
};

struct RunItems {
  std::string source;  // the file
  std::string label;   // the layer path when recorded, else the file name
  // "plain" or "chat:<family>" (LanguageModel::prompt_format); files that predate the field
  // count as plain unless their config names a chat template.
  std::string prompt_format = "plain";
  std::map<std::string, RunTask> tasks;
  std::vector<std::string> task_order;
};

// Reads a results JSON written by `eval -o` (its "samples") or a --log-samples JSONL file (one
// line per item and filter; an item's lines are merged).
// Throws Error "file[:line]: ..." on anything malformed.
RunItems load_run(const std::filesystem::path& file);

struct CompareOptions {
  BootstrapOptions bootstrap;  // 10,000 resamples, seeded
  double alpha = 0.05;         // for the verdicts, on Holm-adjusted p-values
};

struct MetricComparison {
  std::string task;
  MetricInfo metric;
  size_t n = 0;
  double mean_a = 0, mean_b = 0, diff = 0;  // diff = mean_b - mean_a
  Interval ci;
  std::string test;                // "mcnemar" or "paired_t"
  double statistic = 0;            // t, or the discordant count favouring B for McNemar
  int64_t a_only = 0, b_only = 0;  // McNemar's discordant items
  double p = 1, p_holm = 1;
};

struct Comparison {
  std::vector<MetricComparison> rows;  // tasks in A's order, metrics in task order
  std::vector<std::string> verdicts;   // one per task, on its primary metric
};

// Throws Error when the runs' prompt formats, tasks, items or metrics differ.
Comparison compare_runs(const RunItems& a, const RunItems& b, const CompareOptions& opts = {});

// One sentence about a task's primary metric, e.g. "arc_easy: B is better on acc: +0.031
// (95% CI +0.012 to +0.050), McNemar p = 0.0021, Holm p = 0.0042".
std::string verdict(const MetricComparison& row, double alpha, double level);

std::string comparison_table(const Comparison& c);
nlohmann::ordered_json comparison_json(const Comparison& c, const RunItems& a, const RunItems& b,
                                       const CompareOptions& opts);

}  // namespace reprise::eval
