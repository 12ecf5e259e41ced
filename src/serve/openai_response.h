// OpenAI response bodies and server-sent-event framing, without any HTTP.
//
// Shapes (https://platform.openai.com/docs/api-reference):
//   completions   {"id","object":"text_completion","created","model",
//                  "choices":[{"index","text","logprobs","finish_reason"}],"usage"}
//   chat          {"id","object":"chat.completion",...,
//                  "choices":[{"index","message":{"role","content"},"logprobs","finish_reason"}]}
//   chat stream   {"object":"chat.completion.chunk",...,"choices":[{"index","delta",...}]}
// Every reply also carries the extension field "layer_path" (the canonical path that ran) and,
// when the server's router chose it, "route" ({"candidate", "probability", "feature_layer"}).
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "engine/generator.h"
#include "model/tokenizer.h"
#include "serve/openai_request.h"
#include "serve/prompt_scoring.h"

namespace reprise::serve {

// What every reply (and every chunk of a stream) repeats.
struct ReplyHeader {
  Endpoint endpoint = Endpoint::Completions;
  std::string id;       // "cmpl-..." / "chatcmpl-..."
  int64_t created = 0;  // Unix seconds
  std::string model;
  std::string layer_path;  // canonical
  // Routed replies: the router's choice (route_json); null otherwise, and then left out.
  nlohmann::ordered_json route = nullptr;
};

// A fresh reply id with the endpoint's prefix and 24 random hex digits.
std::string make_reply_id(Endpoint endpoint, uint64_t random);

// The token's text as JSON can carry it: invalid UTF-8 (part of a character) becomes U+FFFD.
std::string token_text(std::string_view piece);

// Log-probabilities of `tokens` in the endpoint's shape: completions
// {"tokens","token_logprobs","top_logprobs","text_offset"} (offsets count bytes from the start of
// the prompt text), chat {"content":[{"token","logprob","bytes","top_logprobs"}]}.
nlohmann::ordered_json logprobs_json(Endpoint endpoint, std::span<const GeneratedToken> tokens,
                                     const Tokenizer* tokenizer, size_t text_offset_base);

// A completions logprobs block over scored tokens (echo: the prompt's, then the generated ones):
// null log-probability and alternatives where a token has none (a sequence's first token),
// otherwise {token text: logprob} with `with_top` ({} per token when logprobs is 0).
nlohmann::ordered_json scored_logprobs_json(std::span<const ScoredToken> tokens,
                                            const Tokenizer* tokenizer);

nlohmann::ordered_json usage_json(int prompt_tokens, int completion_tokens);

// "stop" or "length" (a cancelled request has no reader, but reads as "stop").
std::string finish_reason_text(FinishReason r);

// A complete (non-streamed) reply. `logprobs` is null when none were asked for.
nlohmann::ordered_json completion_reply(const ReplyHeader& h, const GenerationResult& r,
                                        const nlohmann::ordered_json& logprobs);

// One choice of a completions reply with several prompts (or an echo).
struct CompletionChoice {
  std::string text;
  FinishReason finish = FinishReason::Length;
  nlohmann::ordered_json logprobs;  // null when none were asked for
  int prompt_tokens = 0, completion_tokens = 0;
  // Routed prompts: the chosen path (canonical) and route_json; the choice then carries both.
  std::string layer_path;
  nlohmann::ordered_json route;
};

// The "route" field of a routed reply: the chosen candidate's key, the classifier's probability
// of it, and the layer after which the router read the prompt.
nlohmann::ordered_json route_json(const std::string& candidate, double probability,
                                  int feature_layer);
// A completions reply with one choice per prompt, "index" in order; usage sums the choices.
nlohmann::ordered_json completions_reply(const ReplyHeader& h,
                                         std::span<const CompletionChoice> choices);

// What one streamed chunk carries: text and its logprobs (or null); the first chat chunk carries
// the role, the last one the finish reason.
struct StreamChunk {
  std::string_view text{};
  nlohmann::ordered_json logprobs = nullptr;
  bool first = false;
  std::optional<FinishReason> finish{};
};
enum class UsageField { Omit, Null };

// One streamed chunk as JSON. UsageField::Null adds "usage": null, as OpenAI does in every chunk
// but the last when stream_options.include_usage asked for usage.
nlohmann::ordered_json stream_chunk(const ReplyHeader& h, const StreamChunk& chunk,
                                    UsageField usage);
// The extra last chunk of a stream with stream_options.include_usage: no choices, usage.
nlohmann::ordered_json usage_chunk(const ReplyHeader& h, int prompt_tokens, int completion_tokens);

// Compact JSON with invalid UTF-8 replaced (never throws on odd bytes).
std::string dump(const nlohmann::ordered_json& j);

// Server-sent events: "data: <payload>\n\n"; the stream ends with kSseDone.
std::string sse_event(const nlohmann::ordered_json& payload);
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

}  // namespace reprise::serve
