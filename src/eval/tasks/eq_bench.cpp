#include "eval/tasks/eq_bench.h"

#include <fmt/format.h>

namespace reprise::eval {

std::vector<MetricInfo> EqBenchTask::metrics() {
  return {{"eqbench", MetricKind::Continuous, true}, {"parseable", MetricKind::Binary, true}};
}

EqBenchTask::EqBenchTask(std::string name, std::string description, std::vector<EqItem> items,
                         int max_tokens)
    : ItemsTask({std::move(name), "generate_until", std::move(description), metrics()},
                std::move(items)),
      max_tokens_(max_tokens) {}

std::vector<Request> EqBenchTask::requests(size_t i) const {
  GenerateRequest r;
  r.context = items_[i].prompt;
  r.stop = {"[End of answer]"};
  r.max_tokens = max_tokens_;
  return {Request(std::move(r))};
}

ItemScore EqBenchTask::score(size_t i, std::span<const Response> responses) const {
  const std::string& output = std::get<GenerateResult>(responses[0]).text;
  const EqReference& ref = items_[i].reference;
  ItemScore out;
  for (size_t k = 0; k < 4; ++k)
    out.gold += fmt::format("{}{}: {}", k ? ", " : "", ref.emotions[k], ref.scores[k]);
  const auto parsed = eqbench_parse(output, ref);
  if (parsed) {
    out.values = {eqbench_score(*parsed, ref), 1.0};
    for (size_t k = 0; k < 4; ++k)
      out.prediction += fmt::format("{}{}: {}", k ? ", " : "", ref.emotions[k], (*parsed)[k]);
  } else {
    out.values = {0.0, 0.0};
  }
  out.details = {{"output", output}};
  return out;
}

}  // namespace reprise::eval
