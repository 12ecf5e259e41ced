#include "eval/tasks/passages.h"

#include <fmt/format.h>

#include <cmath>
#include <limits>

namespace reprise::eval {

std::vector<MetricInfo> PassageTask::metrics() {
  return {{"loglik_per_token", MetricKind::Continuous, true}};
}

PassageTask::PassageTask(std::string name, std::string description, std::vector<Passage> passages)
    : ItemsTask({std::move(name), "loglikelihood_rolling", std::move(description), metrics()},
                std::move(passages)) {}

std::vector<Request> PassageTask::requests(size_t i) const {
  RollingRequest r;
  r.text = items_[i].text;
  return {Request(std::move(r))};
}

ItemScore PassageTask::score(size_t, std::span<const Response> responses) const {
  const auto& r = std::get<RollingResult>(responses[0]);
  ItemScore out;
  const double per_token =
      r.n_tokens > 0 ? r.logprob / r.n_tokens : std::numeric_limits<double>::quiet_NaN();
  out.values = {per_token};
  out.prediction = fmt::format("{:.4f}", per_token);
  out.details = {{"logprob", r.logprob}, {"n_tokens", r.n_tokens}};
  return out;
}

std::vector<std::pair<std::string, double>> PassageTask::aggregates(
    std::span<const nlohmann::json> details) const {
  double lp = 0, n = 0;
  for (const auto& d : details) {
    lp += d.value("logprob", 0.0);
    n += d.value("n_tokens", 0);
  }
  if (n == 0) return {};
  return {{"perplexity", std::exp(-lp / n)}, {"tokens", n}};
}

}  // namespace reprise::eval
