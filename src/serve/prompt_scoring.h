// Log-probabilities of a prompt's own tokens, for completions with "echo": what the model gave
// each prompt token given the ones before it (lm-evaluation-harness's log-likelihood requests).
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <utility>
#include <vector>

#include "engine/session.h"

namespace reprise::serve {

// One token of a completions logprobs block. Values are doubles (log-softmax computed in double,
// as `reprise eval` sums them), so a client summing them gets eval's figure.
struct ScoredToken {
  int32_t id = 0;
  size_t text_offset = 0;         // bytes from the start of the reply's text (set by the caller)
  std::optional<double> logprob;  // none for a sequence's first token
  std::vector<std::pair<int32_t, double>> top;  // the k most likely tokens, most likely first
};

// Feeds prompt[0 .. n-1) to `session` (which must be empty) with every position's logits, and
// returns one entry per prompt token: the first without a log-probability, token i scored from
// the logits after token i-1. The last prompt token is not fed (nothing it predicts is asked
// for): a caller that generates next feeds it itself. `top_k` alternatives per token (0 = none).
std::vector<ScoredToken> score_prompt(Session& session, std::span<const int32_t> prompt, int top_k);

}  // namespace reprise::serve
