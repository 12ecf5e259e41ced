// The token generation loop shared by `reprise run`, `reprise serve` (and later `chat`):
// prompt tokens in, text out through a callback, with sampling, stop sequences, end-of-sequence
// tokens, a token budget, optional log-probabilities and cancellation.
//
// Text is released in whole UTF-8 characters (Utf8Stream), and text that might be the start of
// a stop sequence is held back until the next tokens settle it, so a stop sequence split across
// tokens is still found and never reaches the caller.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engine/sampler.h"
#include "engine/session.h"
#include "model/utf8_stream.h"

namespace reprise {

struct GenerateOptions {
  int max_tokens = 64;  // budget of sampled tokens (an end-of-sequence token is not counted)
  SamplerOptions sampler;
  std::vector<std::string> stop;  // stop sequences (empty strings are ignored)
  bool ignore_eos = false;        // keep going past EOS/EOT
  // Log-probabilities per generated token: -1 none, 0 the chosen token only, k > 0 also the k
  // most likely alternatives. Taken from the model's distribution (softmax of the raw logits),
  // whatever the sampling temperature.
  int logprobs = -1;
  // Keep suits a terminal (bytes pass through as the model produced them); Replace guarantees
  // valid UTF-8, which JSON replies need.
  Utf8Stream::Invalid invalid_utf8 = Utf8Stream::Invalid::Keep;
};

struct TokenLogprob {
  int32_t token = 0;
  float logprob = 0;
};

struct GeneratedToken {
  int32_t id = 0;
  std::string piece;              // the token's bytes (may be part of a UTF-8 character)
  size_t text_offset = 0;         // where the token's text starts in the generated text
  float logprob = 0;              // set when GenerateOptions::logprobs >= 0
  std::vector<TokenLogprob> top;  // the `logprobs` most likely tokens, most likely first
};

// One release of text. `tokens` are the tokens whose text is complete by the end of `text`
// (a token that ends inside a held-back character or stop prefix comes with a later chunk).
struct GenerationChunk {
  std::string_view text;
  std::span<const GeneratedToken> tokens;
};

// Returning false from on_chunk cancels generation (e.g. the client went away).
using ChunkCallback = std::function<bool(const GenerationChunk&)>;

// Turns generated tokens into released text: whole UTF-8 characters only, and text that could
// still become a stop sequence is held back until the next tokens settle it. The stop sequence
// itself is never released. generate() uses one; it is public so that other loops (and tests)
// can feed it pieces directly.
class TextReleaser {
 public:
  TextReleaser(const GenerateOptions& opts, ChunkCallback on_chunk);

  // Adds a token (text_offset is filled in). Returns false when the callback cancelled; sets
  // `stopped` when the token completed a stop sequence (nothing more may be added then).
  bool add(GeneratedToken tok, bool& stopped);
  // Releases everything still held (the end of generation); may still find a stop sequence.
  bool finish(bool& stopped);

  const std::string& text() const { return released_; }
  const std::string& matched_stop() const { return matched_stop_; }

 private:
  size_t produced() const { return released_.size() + held_.size(); }
  void settle_ends();
  size_t find_stop(std::string& which) const;
  size_t stop_prefix_len() const;
  bool release(bool final, bool& stopped);

  Utf8Stream utf8_;
  ChunkCallback on_chunk_;
  std::vector<std::string> stops_;
  std::string released_;  // text handed out so far
  std::string held_;      // complete characters not yet released (a possible stop prefix)
  std::string matched_stop_;
  std::vector<GeneratedToken> pending_;  // tokens not yet handed out
  std::vector<size_t> ends_;  // per pending token: end of its text, or npos while in utf8_
};

enum class FinishReason {
  Stop,       // EOS/EOT or a stop sequence
  Length,     // max_tokens reached, or the context is full
  Cancelled,  // the cancellation check or the chunk callback asked to stop
  Timeout,    // set by callers whose cancellation was a deadline (serve's --timeout), never here
};

const char* finish_reason_name(FinishReason r);  // "stop", "length", "cancelled", "timeout"

struct GenerationResult {
  FinishReason finish = FinishReason::Length;
  std::string text;  // everything released, without the stop sequence
  int prompt_tokens = 0;
  int completion_tokens = 0;  // sampled tokens, EOS excluded
  std::string stop_sequence;  // the stop sequence that ended generation, if any
  // The end-of-generation token (EOS/EOT) that ended it, if one did: sampled but not released
  // and not counted. Its logprob and top are set as for released tokens (OpenAI's echo lists
  // it after the prompt; lm-evaluation-harness counts on that one sampled token being there).
  std::optional<GeneratedToken> end_token;
  double prefill_seconds = 0;
  double decode_seconds = 0;  // from the first sampled token to the end
};

// Polled before every forward pass; true cancels.
using CancelCheck = std::function<bool()>;

// Continues `session` from its current position with `prompt` (at least one token), then
// samples up to opts.max_tokens tokens. The tokenizer may be null (a model without vocabulary):
// pieces are then empty and stop sequences never match. Throws Error on bad options, a bad
// token id or a prompt that does not fit the context.
GenerationResult generate(Session& session, const Tokenizer* tokenizer,
                          std::span<const int32_t> prompt, const GenerateOptions& opts,
                          const ChunkCallback& on_chunk, const CancelCheck& cancelled = {});

// Log-softmax of `logits` for token `id`, and the k largest entries (most likely first).
float token_logprob(std::span<const float> logits, int32_t id);
std::vector<TokenLogprob> top_logprobs(std::span<const float> logits, int k);

}  // namespace reprise
