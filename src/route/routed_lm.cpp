#include "route/routed_lm.h"

#include <fmt/format.h>

#include <type_traits>

namespace reprise::route {
namespace {

const std::string& context_text(const eval::LoglikelihoodRequest& r) {
  return r.context;
}
const std::string& context_text(const eval::RollingRequest& r) {
  return r.text;
}
const std::string& context_text(const eval::GenerateRequest& r) {
  return r.context;
}
const std::string& context_text(const eval::CandidateRequest& r) {
  return r.context;
}

}  // namespace

RoutedLM::RoutedLM(const Model& model, PathRouter& router, const eval::SessionLMOptions& opts)
    : router_(router),
      lm_(model, parse_layer_path(router.file().candidate_paths.at(0), model.hparams().n_layer),
          opts) {
  lm_.session().set_prefix_cache(&router_.cache());
}

std::string RoutedLM::description() const {
  return fmt::format("{}, routed over {} paths", lm_.description(),
                     router_.file().candidate_keys.size());
}

std::string RoutedLM::chosen(const std::string& context) const {
  auto it = chosen_.find(context);
  return it == chosen_.end() ? std::string() : it->second;
}

template <typename Req, typename Res, typename Call>
std::vector<Res> RoutedLM::routed(std::span<const Req> requests, Call call) {
  std::vector<Res> out;
  out.reserve(requests.size());
  size_t start = 0;
  while (start < requests.size()) {
    const auto c =
        router_.choose(request_prompt(eval::Request(requests[start]), lm_.request_tokenizer()));
    // Keyed as the samples log shows the item's prompt (eval/evaluator.h: ItemRecord::prompt).
    const std::string& text = context_text(requests[start]);
    chosen_[std::is_same_v<Req, eval::RollingRequest> ? text : lm_.rendered(text, "").first] =
        c.key;
    size_t end = start + 1;
    // Requests of one item share a context: one choice serves the whole run.
    while (end < requests.size() && context_text(requests[end]) == context_text(requests[start]))
      ++end;
    counts_[c.key] += static_cast<int64_t>(end - start);
    if (c.candidate != current_) {
      lm_.set_path(c.path);
      current_ = c.candidate;
    }
    auto part = (lm_.*call)(requests.subspan(start, end - start));
    out.insert(out.end(), part.begin(), part.end());
    start = end;
  }
  return out;
}

std::vector<eval::LoglikelihoodResult> RoutedLM::loglikelihood(
    std::span<const eval::LoglikelihoodRequest> requests) {
  return routed<eval::LoglikelihoodRequest, eval::LoglikelihoodResult>(
      requests, &eval::SessionLM::loglikelihood);
}
std::vector<eval::RollingResult> RoutedLM::loglikelihood_rolling(
    std::span<const eval::RollingRequest> requests) {
  return routed<eval::RollingRequest, eval::RollingResult>(requests,
                                                           &eval::SessionLM::loglikelihood_rolling);
}
std::vector<eval::GenerateResult> RoutedLM::generate_until(
    std::span<const eval::GenerateRequest> requests) {
  return routed<eval::GenerateRequest, eval::GenerateResult>(requests,
                                                             &eval::SessionLM::generate_until);
}
std::vector<eval::CandidateResult> RoutedLM::candidate_probs(
    std::span<const eval::CandidateRequest> requests) {
  return routed<eval::CandidateRequest, eval::CandidateResult>(requests,
                                                               &eval::SessionLM::candidate_probs);
}

}  // namespace reprise::route
