#include "eval/tasks/digits.h"

#include <fmt/format.h>

#include "eval/metrics.h"

namespace reprise::eval {

std::vector<MetricInfo> DigitTask::metrics() {
  return {{"digit_score", MetricKind::Continuous, true},
          {"acc", MetricKind::Binary, true},
          {"p_gold", MetricKind::Continuous, true}};
}

DigitTask::DigitTask(std::string name, std::string description, std::vector<DigitItem> items)
    : ItemsTask({std::move(name), "digit_expectation", std::move(description), metrics()},
                std::move(items)) {}

std::vector<Request> DigitTask::requests(size_t i) const {
  CandidateRequest r;
  r.context = items_[i].context;
  for (int d = 0; d < 10; ++d) r.candidates.push_back(std::string{' ', static_cast<char>('0' + d)});
  return {Request(std::move(r))};
}

ItemScore DigitTask::score(size_t i, std::span<const Response> responses) const {
  const auto& r = std::get<CandidateResult>(responses[0]);
  const DigitScore s = score_digits(r.probs, items_[i].gold);
  ItemScore out;
  out.values = {s.score, s.acc, s.p_gold};
  out.prediction = fmt::format("{:.3f}", s.expected);
  out.gold = std::to_string(items_[i].gold);
  out.details = {{"probs", r.probs}, {"expected", s.expected}};
  return out;
}

}  // namespace reprise::eval
