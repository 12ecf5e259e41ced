// EQ-Bench v2: the model rates four emotions of a dialogue character from 0 to 10; the answer is
// scored against the reference ratings with EQ-Bench's own formula (eval/metrics.h).
// An answer that cannot be parsed scores 0 (the level EQ-Bench calibrates random answers to) and
// `parseable` records it, so two runs are always compared on the same items.
#pragma once

#include <string>
#include <vector>

#include "eval/metrics.h"
#include "eval/task.h"

namespace reprise::eval {

struct EqItem {
  std::string id;
  std::string prompt;
  EqReference reference;
};

class EqBenchTask final : public ItemsTask<EqItem> {
 public:
  EqBenchTask(std::string name, std::string description, std::vector<EqItem> items,
              int max_tokens = 384);

  static std::vector<MetricInfo> metrics();

  std::vector<Request> requests(size_t i) const override;
  ItemScore score(size_t i, std::span<const Response> responses) const override;

 private:
  int max_tokens_;
};

}  // namespace reprise::eval
