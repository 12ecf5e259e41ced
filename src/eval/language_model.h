// How a model answers: the requests an evaluation task can make, and the abstract model that
// serves them in batches. A task (eval/task.h) only builds requests and scores responses; it
// never sees a Session, so the same task runs on a plain Session (SessionLM), on a layer scan's
// prefix-cached configurations, or on anything else that implements LanguageModel.
//
// Texts are tokenized by the model (see eval/request_tokens.h for the rules), unless a request
// carries token ids, which are then used exactly as given.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

namespace reprise {
class Tokenizer;
}

namespace reprise::eval {

// log P(continuation | context), summed over the continuation's tokens.
struct LoglikelihoodRequest {
  std::string context;
  std::string continuation;
  // Token form: used instead of the texts when continuation_tokens is non-empty. The context
  // tokens must then include any BOS the model needs.
  std::vector<int32_t> context_tokens;
  std::vector<int32_t> continuation_tokens;
};

struct LoglikelihoodResult {
  double logprob = 0;      // natural log, summed over the continuation's tokens
  bool is_greedy = false;  // every continuation token was the argmax at its position
  int n_tokens = 0;        // continuation tokens scored
};

// log P(text) of a whole passage, every token conditioned on what precedes it; passages longer
// than the context are scored in overlapping windows (each token is scored exactly once).
struct RollingRequest {
  std::string text;
  std::vector<int32_t> tokens;  // token form; tokens[0] is the start token and is not scored
};

struct RollingResult {
  double logprob = 0;  // summed over the scored tokens
  int n_tokens = 0;    // tokens scored
};

// Greedy generation after `context` until a stop sequence, end of sequence or max_tokens.
struct GenerateRequest {
  std::string context;
  std::vector<std::string> stop;  // the returned text is cut before the first one that appears
  int max_tokens = 256;
  std::vector<int32_t> context_tokens;  // token form, used when non-empty
};

struct GenerateResult {
  std::string text;  // without the stop sequence
  int n_tokens = 0;  // tokens generated (including any that made up the stop sequence)
};

// The softmax restricted to a few candidate next tokens after a context (e.g. the digits 0-9,
// for an expected-value metric). With texts, each candidate is context + candidate tokenized
// together; the tokens all candidates share become the context and each candidate's first token
// after that is its token (so " 7" works for tokenizers that split off the space and for those
// that merge it into the digit). Candidates must map to distinct tokens.
struct CandidateRequest {
  std::string context;
  std::vector<std::string> candidates;
  std::vector<int32_t> context_tokens;  // token form, used when candidate_tokens is non-empty
  std::vector<int32_t> candidate_tokens;
};

struct CandidateResult {
  std::vector<double> probs;    // one per candidate, summing to 1
  std::vector<int32_t> tokens;  // the candidate tokens that were used
};

using Request =
    std::variant<LoglikelihoodRequest, RollingRequest, GenerateRequest, CandidateRequest>;
using Response = std::variant<LoglikelihoodResult, RollingResult, GenerateResult, CandidateResult>;

class LanguageModel {
 public:
  virtual ~LanguageModel() = default;

  virtual const Tokenizer& tokenizer() const = 0;
  // One line for logs, e.g. "models/stories260K.gguf, path 0..3,1..4".
  virtual std::string description() const = 0;

  // How texts are rendered before tokenizing: "plain", or "chat:<family>" when every context is
  // wrapped in a chat template. Runs in different formats score different prompts.
  virtual std::string prompt_format() const { return "plain"; }
  // A context and continuation as the model reads them (chat-wrapped, whitespace moved), for the
  // samples log.
  virtual std::pair<std::string, std::string> rendered(std::string_view context,
                                                       std::string_view continuation) const {
    return {std::string(context), std::string(continuation)};
  }

  // Each call answers a batch; results are in request order. Implementations may reorder the
  // work (e.g. to share prefixes) but not the results. Throw reprise::Error on bad input.
  virtual std::vector<LoglikelihoodResult> loglikelihood(
      std::span<const LoglikelihoodRequest> requests) = 0;
  virtual std::vector<RollingResult> loglikelihood_rolling(
      std::span<const RollingRequest> requests) = 0;
  virtual std::vector<GenerateResult> generate_until(std::span<const GenerateRequest> requests) = 0;
  virtual std::vector<CandidateResult> candidate_probs(
      std::span<const CandidateRequest> requests) = 0;

  // Progress inside a batch: `f` is called each time a request has been answered, in the order
  // the work is done. Implementations call request_done(); one that never does reports only per
  // batch. Empty = off. The caller keeps whatever `f` refers to alive while it is set.
  void on_request_done(std::function<void()> f) { request_done_ = std::move(f); }

 protected:
  void request_done() const {
    if (request_done_) request_done_();
  }

 private:
  std::function<void()> request_done_;
};

// Sends mixed requests to the model, one batched call per kind, and returns the responses in
// request order.
std::vector<Response> run_requests(LanguageModel& lm, std::span<const Request> requests);

}  // namespace reprise::eval
