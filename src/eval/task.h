// What a task asks: items turned into requests (eval/language_model.h) and responses turned into
// per-item scores. Tasks never run a model themselves.
#pragma once

#include <nlohmann/json.hpp>

#include <cstddef>
#include <span>
#include <string>
#include <vector>

#include "eval/language_model.h"

namespace reprise::eval {

// Binary metrics take the values 0 and 1 (compared with an exact McNemar test); continuous ones
// any real value (paired t-test).
enum class MetricKind { Binary, Continuous };

const char* metric_kind_name(MetricKind k);  // "binary", "continuous"

struct MetricInfo {
  std::string name;
  MetricKind kind = MetricKind::Binary;
  bool higher_is_better = true;
};

struct TaskInfo {
  std::string name;
  std::string output_type;  // "multiple_choice", "generate_until", "loglikelihood_rolling", ...
  std::string description;
  std::vector<MetricInfo> metrics;  // the first is the task's primary metric
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

}  // namespace reprise::eval
