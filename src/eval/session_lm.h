// LanguageModel over one reprise Session (one model, one layer path).
//
// Requests in a batch are reordered so that those sharing a prefix (the same context with
// different continuations, the same few-shot examples before different questions) run back to
// back; the session keeps the KV of the last sequence it ran and only computes the tokens past
// the longest prefix a new request shares with it (Session::truncate). Each request's new tokens
// go through prefill in one call (chunked by n_batch), never token by token. Prefills are
// batch-invariant (Session::set_batch_invariant), so a request scores the same bit for bit
// whatever prefix it reuses, and as one prefill of the whole sequence (serve's echo) scores it.
#pragma once

#include <cstdint>
#include <functional>
#include <span>
#include <vector>

#include "engine/session.h"
#include "eval/language_model.h"
#include "eval/request_tokens.h"

namespace reprise::eval {

struct SessionLMOptions {
  SessionOptions session;  // n_ctx, n_batch, threads
  PromptFormat format;     // chat wrapping of contexts
};

class SessionLM final : public LanguageModel {
 public:
  // Throws Error if the model has no vocabulary (tasks are text).
  SessionLM(const Model& model, LayerPath path, const SessionLMOptions& opts = {});

  const Tokenizer& tokenizer() const override;
  std::string description() const override;
  std::string prompt_format() const override { return rt_.format_name(); }
  std::pair<std::string, std::string> rendered(std::string_view context,
                                               std::string_view continuation) const override {
    return rt_.rendered(context, continuation);
  }

  std::vector<LoglikelihoodResult> loglikelihood(
      std::span<const LoglikelihoodRequest> requests) override;
  std::vector<RollingResult> loglikelihood_rolling(
      std::span<const RollingRequest> requests) override;
  std::vector<GenerateResult> generate_until(std::span<const GenerateRequest> requests) override;
  std::vector<CandidateResult> candidate_probs(std::span<const CandidateRequest> requests) override;

  // Switches the layer path (the scan runs every config through one SessionLM); the KV the
  // session held belongs to the old path and is forgotten.
  void set_path(LayerPath path) {
    session_.set_path(std::move(path));
    cached_.clear();
  }
  Session& session() { return session_; }

  const RequestTokenizer& request_tokenizer() const { return rt_; }
  int n_ctx() const { return session_.n_ctx(); }
  // Tokens run through the model so far; prefix reuse keeps this below the tokens requested.
  int64_t tokens_computed() const { return n_computed_; }
  // Requests whose context was cut from the left to fit n_ctx.
  int64_t requests_truncated() const { return n_truncated_; }

 private:
  // One scored row: its position, its logits, and log(sum(exp(logits))) (computed for the rows
  // of a chunk in parallel, as it costs a pass over the whole vocabulary).
  using RowFn = std::function<void(size_t pos, std::span<const float> logits, double lse)>;

  // Makes the session hold exactly `tokens`, computing only what follows the longest prefix it
  // already holds (but at least positions first_row..), and calls row(pos, logits) for each
  // position pos >= first_row with the logits that predict token pos + 1.
  void forward(std::span<const int32_t> tokens, size_t first_row, const RowFn& row);
  // Cuts a sequence from the left (keeping its first token, usually BOS) to at most n tokens.
  std::vector<int32_t> fit_left(std::vector<int32_t> tokens, size_t n, size_t min_tail);

  const Model& model_;
  Session session_;
  RequestTokenizer rt_;
  // The first tokens whose KV the session holds (size <= n_past), all run by batch-invariant
  // prefills; the decoded tokens of a generation that may follow them are not reused.
  std::vector<int32_t> cached_;
  int64_t n_computed_ = 0;
  int64_t n_truncated_ = 0;
};

}  // namespace reprise::eval
