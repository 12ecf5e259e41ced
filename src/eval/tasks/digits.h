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

class DigitTask final : public Task {
 public:
  DigitTask(std::string name, std::string description, std::vector<DigitItem> items);

  static std::vector<MetricInfo> metrics();

  const TaskInfo& info() const override { return info_; }
  size_t size() const override { return items_.size(); }
  std::string item_id(size_t i) const override { return items_[i].id; }
  std::vector<Request> requests(size_t i) const override;
  ItemScore score(size_t i, std::span<const Response> responses) const override;

 private:
  TaskInfo info_;
  std::vector<DigitItem> items_;
};

}  // namespace reprise::eval
