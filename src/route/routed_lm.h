// `eval --path auto:router.json`: a LanguageModel that routes every request to the candidate
// path its router picks from the request's context, running that context's prefix once.
#pragma once

#include <map>
#include <string>

#include "eval/session_lm.h"
#include "route/prefix_features.h"

namespace reprise::route {

class RoutedLM final : public eval::LanguageModel {
 public:
  // `router` must outlive this object; the inner SessionLM reuses its prefix cache.
  RoutedLM(const Model& model, PathRouter& router, const eval::SessionLMOptions& opts);

  const Tokenizer& tokenizer() const override { return lm_.tokenizer(); }
  std::string description() const override;
  std::string prompt_format() const override { return lm_.prompt_format(); }
  std::pair<std::string, std::string> rendered(std::string_view context,
                                               std::string_view continuation) const override {
    return lm_.rendered(context, continuation);
  }

  std::vector<eval::LoglikelihoodResult> loglikelihood(
      std::span<const eval::LoglikelihoodRequest> requests) override;
  std::vector<eval::RollingResult> loglikelihood_rolling(
      std::span<const eval::RollingRequest> requests) override;
  std::vector<eval::GenerateResult> generate_until(
      std::span<const eval::GenerateRequest> requests) override;
  std::vector<eval::CandidateResult> candidate_probs(
      std::span<const eval::CandidateRequest> requests) override;

  // The candidate key chosen for a context as the model read it (rendered; a rolling request's
  // passage as given), "" if none was routed yet.
  std::string chosen(const std::string& context) const;
  // Requests routed to each candidate key.
  const std::map<std::string, int64_t>& counts() const { return counts_; }
  eval::SessionLM& inner() { return lm_; }

 private:
  // Routes each request, then answers runs of consecutive requests with the same path in one
  // call of `call` on the inner model (so prefix sharing inside a run still works).
  template <typename Req, typename Res, typename Call>
  std::vector<Res> routed(std::span<const Req> requests, Call call);

  PathRouter& router_;
  eval::SessionLM lm_;
  size_t current_ = 0;                         // candidate the inner model's path is set to
  std::map<std::string, std::string> chosen_;  // context text -> candidate key
  std::map<std::string, int64_t> counts_;
};

}  // namespace reprise::route
