// Passages scored by their own likelihood (TinyStories, WikiText-2, users' text files): each
// item is one passage and its score is the mean log-likelihood per token (higher is better).
// The token-weighted perplexity over all passages is reported as an aggregate.
#pragma once

#include <string>
#include <vector>

#include "eval/task.h"

namespace reprise::eval {

struct Passage {
  std::string id;
  std::string text;
};

class PassageTask final : public ItemsTask<Passage> {
 public:
  PassageTask(std::string name, std::string description, std::vector<Passage> passages);

  static std::vector<MetricInfo> metrics();

  // Items sharing a unit (a passage, a story, a twin pair) share a cluster id; without
  // set_clusters every item is its own.
  std::string cluster_id(size_t i) const override {
    return clusters_.empty() ? item_id(i) : clusters_[i];
  }
  // One id per item, in item order.
  void set_clusters(std::vector<std::string> clusters) { clusters_ = std::move(clusters); }
  std::vector<Request> requests(size_t i) const override;
  ItemScore score(size_t i, std::span<const Response> responses) const override;
  // "perplexity": exp(-sum logprob / sum tokens) over the evaluated passages; "tokens".
  std::vector<std::pair<std::string, double>> aggregates(
      std::span<const nlohmann::json> details) const override;

 private:
  std::vector<std::string> clusters_;
};

}  // namespace reprise::eval
