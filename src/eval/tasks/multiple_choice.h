// Multiple choice by log-likelihood: every option is scored as a continuation and the most
// likely one is the model's answer (acc), also after dividing by the option's length (acc_norm).
//
// Partial scoring (WinoGrande) turns it around: the options are different contexts and the
// shared continuation is scored after each; only acc is defined then.
#pragma once

#include <string>
#include <vector>

#include "eval/task.h"

namespace reprise::eval {

struct ChoiceItem {
  std::string id;
  std::string context;               // the question (ordinary items)
  std::vector<std::string> choices;  // option texts (partial scoring: the contexts)
  std::string continuation;          // partial scoring only: scored after each choice
  size_t gold = 0;
};

class MultipleChoiceTask final : public ItemsTask<ChoiceItem> {
 public:
  // `delimiter` joins context and option (ordinary) or option and continuation (partial).
  // acc_norm is scored beside acc unless partial or acc_norm is false (lm-eval's BoolQ).
  MultipleChoiceTask(std::string name, std::string description, std::vector<ChoiceItem> items,
                     std::string delimiter = " ", bool partial = false, bool acc_norm = true);

  static std::vector<MetricInfo> metrics(bool acc_norm);

  void set_version(double v) { info_.version = v; }

  // Items sharing a unit (a passage, a story, a twin pair) share a cluster id; without
  // set_clusters every item is its own.
  std::string cluster_id(size_t i) const override {
    return clusters_.empty() ? item_id(i) : clusters_[i];
  }
  // One id per item, in item order.
  void set_clusters(std::vector<std::string> clusters) { clusters_ = std::move(clusters); }
  std::vector<Request> requests(size_t i) const override;
  ItemScore score(size_t i, std::span<const Response> responses) const override;

 private:
  std::string delimiter_;
  bool partial_;
  bool acc_norm_;
  std::vector<std::string> clusters_;
};

}  // namespace reprise::eval
