// What a task asks: items turned into requests (eval/language_model.h) and responses turned into
// per-item scores. Tasks never run a model themselves.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "eval/language_model.h"

namespace reprise::eval {

// Binary metrics take the values 0 and 1 (compared with an exact McNemar test); continuous ones
// any real value (paired t-test).
enum class MetricKind { Binary, Continuous };

const char* metric_kind_name(MetricKind k);  // "binary", "continuous"

struct MetricInfo {
  std::string name;  // lm-evaluation-harness's metric name: "acc", "exact_match", ...
  MetricKind kind = MetricKind::Binary;
  bool higher_is_better = true;
  // lm-eval's filter the metric is computed after ("strict-match", ...); "none" for none.
  std::string filter = "none";

  // The metric's name within reprise (per-item scores, compare, scan stores): the name, or
  // "name,filter" when filtered, so a task's metrics have distinct ids.
  std::string id() const { return filter == "none" ? name : name + "," + filter; }
};

struct TaskInfo {
  std::string name;
  std::string output_type;  // "multiple_choice", "generate_until", "loglikelihood_rolling", ...
  std::string description;
  std::vector<MetricInfo> metrics;  // the first is the task's primary metric
  // As lm-eval's results files report them: the task's version (lm-eval's, for tasks that match
  // one of its tasks of the same name) and the number of worked examples in each prompt.
  double version = 1.0;
  int num_fewshot = 0;
};

// An lm-eval group of tasks (e.g. "bbh") and the metrics it reports over them: each metric's
// mean over all the subtasks' items (lm-eval's weight_by_size) with the pooled standard error.
struct TaskGroup {
  std::string name;
  std::vector<std::string> tasks;
  std::vector<std::string> metrics;  // MetricInfo::id()s
  double version = 1.0;
};

struct ItemScore {
  std::vector<double> values;  // one per TaskInfo::metrics, in that order
  std::string prediction;      // what the model answered (extracted answer, chosen option)
  std::string gold;
  nlohmann::json details;  // optional: raw output, per-choice log-likelihoods, ...
};

class Task {
 public:
  virtual ~Task() = default;

  virtual const TaskInfo& info() const = 0;
  virtual size_t size() const = 0;
  // Stable across runs and versions: the item's place in its dataset, or its own id.
  virtual std::string item_id(size_t i) const = 0;
  // The unit item i shares with other items (a BoolQ passage, a TinyStories story, a WinoGrande
  // twin pair), so that statistics can resample whole units; by default every item is its own.
  virtual std::string cluster_id(size_t i) const { return item_id(i); }
  virtual std::vector<Request> requests(size_t i) const = 0;
  // responses[k] answers requests(i)[k].
  virtual ItemScore score(size_t i, std::span<const Response> responses) const = 0;

  // Task-level figures that are not means of per-item scores (e.g. token-weighted perplexity);
  // `details` are the items' ItemScore::details in evaluation order.
  virtual std::vector<std::pair<std::string, double>> aggregates(
      std::span<const nlohmann::json> /*details*/) const {
    return {};
  }
};

// A task over a list of items that each carry a string `id`: its info, size and item ids, which
// every such task would otherwise declare alike.
template <typename Item>
class ItemsTask : public Task {
 public:
  const TaskInfo& info() const override { return info_; }
  size_t size() const override { return items_.size(); }
  std::string item_id(size_t i) const override { return items_[i].id; }

 protected:
  ItemsTask(TaskInfo info, std::vector<Item> items)
      : info_(std::move(info)), items_(std::move(items)) {}

  TaskInfo info_;
  std::vector<Item> items_;
};

}  // namespace reprise::eval
