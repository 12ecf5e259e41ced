#include "eval/tasks/multiple_choice.h"

#include "eval/metrics.h"

namespace reprise::eval {

std::vector<MetricInfo> MultipleChoiceTask::metrics(bool acc_norm) {
  if (!acc_norm) return {{"acc", MetricKind::Binary, true}};
  return {{"acc", MetricKind::Binary, true}, {"acc_norm", MetricKind::Binary, true}};
}

MultipleChoiceTask::MultipleChoiceTask(std::string name, std::string description,
                                       std::vector<ChoiceItem> items, std::string delimiter,
                                       bool partial, bool acc_norm)
    : ItemsTask({std::move(name), partial ? "multiple_choice_partial" : "multiple_choice",
                 std::move(description), metrics(acc_norm && !partial)},
                std::move(items)),
      delimiter_(std::move(delimiter)),
      partial_(partial),
      acc_norm_(acc_norm && !partial) {}

std::vector<Request> MultipleChoiceTask::requests(size_t i) const {
  const ChoiceItem& it = items_[i];
  std::vector<Request> out;
  for (const auto& c : it.choices) {
    LoglikelihoodRequest r;
    r.context = partial_ ? c : it.context;
    r.continuation = delimiter_ + (partial_ ? it.continuation : c);
    out.emplace_back(std::move(r));
  }
  return out;
}

ItemScore MultipleChoiceTask::score(size_t i, std::span<const Response> responses) const {
  const ChoiceItem& it = items_[i];
  std::vector<double> ll;
  nlohmann::json greedy = nlohmann::json::array();
  for (const auto& r : responses) {
    const auto& res = std::get<LoglikelihoodResult>(r);
    ll.push_back(res.logprob);
    greedy.push_back(res.is_greedy);
  }
  const ChoiceScore s = score_choices(ll, it.choices, it.gold);
  ItemScore out;
  out.values = acc_norm_ ? std::vector<double>{s.acc, s.acc_norm} : std::vector<double>{s.acc};
  out.prediction = it.choices[s.pred];
  out.gold = it.choices[it.gold];
  out.details = {{"loglik", ll}, {"is_greedy", greedy}, {"pred", s.pred}, {"gold", it.gold}};
  // What lm-eval logs as the target: the gold index, or with partial scoring the shared ending.
  out.details["target"] = partial_ ? it.continuation : std::to_string(it.gold);
  if (acc_norm_) out.details["pred_norm"] = s.pred_norm;
  return out;
}

}  // namespace reprise::eval
