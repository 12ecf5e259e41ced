#include "eval/tasks/generation.h"

namespace reprise::eval {

GenerationTask::GenerationTask(std::string name, std::string description,
                               std::vector<GenItem> items, std::vector<std::string> stop,
                               int max_tokens, std::vector<GenMetric> metrics)
    : ItemsTask({std::move(name), "generate_until", std::move(description), {}}, std::move(items)),
      stop_(std::move(stop)),
      max_tokens_(max_tokens),
      metrics_(std::move(metrics)) {
  for (const auto& m : metrics_) info_.metrics.push_back(m.info);
}

std::vector<Request> GenerationTask::requests(size_t i) const {
  GenerateRequest r;
  r.context = items_[i].context;
  r.stop = items_[i].stop.empty() ? stop_ : items_[i].stop;
  r.max_tokens = items_[i].max_tokens > 0 ? items_[i].max_tokens : max_tokens_;
  return {Request(std::move(r))};
}

ItemScore GenerationTask::score(size_t i, std::span<const Response> responses) const {
  const std::string& output = std::get<GenerateResult>(responses[0]).text;
  ItemScore out;
  out.gold = items_[i].gold;
  nlohmann::json extracted = nlohmann::json::object();
  for (size_t k = 0; k < metrics_.size(); ++k) {
    std::string e;
    out.values.push_back(metrics_[k].score(output, items_[i], e));
    if (k == 0) out.prediction = e;
    extracted[metrics_[k].info.id()] = e;
  }
  out.details = {{"output", output}, {"extracted", extracted}};
  return out;
}

GenMetric exact_match_metric(
    std::string name, std::function<std::string(const std::string& output)> extract,
    std::function<bool(const std::string& extracted, const std::string& gold)> same) {
  GenMetric m;
  m.info = {std::move(name), MetricKind::Binary, true};
  m.score = [extract = std::move(extract), same = std::move(same)](
                const std::string& output, const GenItem& item, std::string& extracted) {
    extracted = extract(output);
    return same(extracted, item.gold) ? 1.0 : 0.0;
  };
  return m;
}

}  // namespace reprise::eval
