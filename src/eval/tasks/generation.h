// Generation until a stop sequence, scored by metrics on the generated text (exact match after
// an answer-extraction rule, numeric partial credit, ...).
#pragma once

#include <functional>
#include <string>
#include <vector>

#include "eval/task.h"

namespace reprise::eval {

struct GenItem {
  std::string id;
  std::string context;
  std::string gold;
  std::vector<std::string> stop;  // overrides the task's stop sequences when non-empty
  int max_tokens = 0;             // overrides the task's limit when > 0
};

struct GenMetric {
  MetricInfo info;
  // Scores one output; sets `extracted` to the answer it read from the output.
  std::function<double(const std::string& output, const GenItem& item, std::string& extracted)>
      score;
};

class GenerationTask final : public ItemsTask<GenItem> {
 public:
  GenerationTask(std::string name, std::string description, std::vector<GenItem> items,
                 std::vector<std::string> stop, int max_tokens, std::vector<GenMetric> metrics);

  std::vector<Request> requests(size_t i) const override;
  // The prediction is what the first metric extracted.
  ItemScore score(size_t i, std::span<const Response> responses) const override;

  void set_version(double v) { info_.version = v; }
  void set_num_fewshot(int n) { info_.num_fewshot = n; }

 private:
  std::vector<std::string> stop_;
  int max_tokens_;
  std::vector<GenMetric> metrics_;
};

// exact_match: the answer extracted by `extract` equals the gold under `same`.
GenMetric exact_match_metric(
    std::string name, std::function<std::string(const std::string& output)> extract,
    std::function<bool(const std::string& extracted, const std::string& gold)> same);

}  // namespace reprise::eval
