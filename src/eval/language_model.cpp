#include "eval/language_model.h"

namespace reprise::eval {
namespace {

// Collects the requests of one kind, calls the batched method once and scatters the results.
template <typename Req, typename Call>
void run_kind(std::span<const Request> requests, std::vector<Response>& out, Call call) {
  std::vector<Req> batch;
  std::vector<size_t> where;
  for (size_t i = 0; i < requests.size(); ++i)
    if (const auto* r = std::get_if<Req>(&requests[i])) {
      batch.push_back(*r);
      where.push_back(i);
    }
  if (batch.empty()) return;
  auto results = call(std::span<const Req>(batch));
  for (size_t k = 0; k < where.size(); ++k) out[where[k]] = std::move(results[k]);
}

}  // namespace

std::vector<Response> run_requests(LanguageModel& lm, std::span<const Request> requests) {
  std::vector<Response> out(requests.size());
  run_kind<LoglikelihoodRequest>(requests, out, [&](auto b) { return lm.loglikelihood(b); });
  run_kind<RollingRequest>(requests, out, [&](auto b) { return lm.loglikelihood_rolling(b); });
  run_kind<GenerateRequest>(requests, out, [&](auto b) { return lm.generate_until(b); });
  run_kind<CandidateRequest>(requests, out, [&](auto b) { return lm.candidate_probs(b); });
  return out;
}

}  // namespace reprise::eval
