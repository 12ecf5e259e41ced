// Single-digit answers scored by the model's whole distribution over the digits 0-9 at the
// answer position (no sampling): the expected digit, its distance from the gold digit, and
// whether the most likely digit is the gold one.
#pragma once

#include <string>
#include <vector>

#include "eval/task.h"

namespace reprise::eval {

struct DigitItem {
  std::string id;
  std::string context;  // ends where the digit goes, e.g. "... The result is"
  int gold = 0;
};

class DigitTask final : public ItemsTask<DigitItem> {
 public:
  DigitTask(std::string name, std::string description, std::vector<DigitItem> items);

  static std::vector<MetricInfo> metrics();

  std::vector<Request> requests(size_t i) const override;
  ItemScore score(size_t i, std::span<const Response> responses) const override;
};

}  // namespace reprise::eval
