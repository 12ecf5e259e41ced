// OpenAI request bodies → validated internal requests, without any HTTP.
//
// Two steps: parse_request() checks the JSON body on its own (types, ranges, supported fields);
// resolve_request() then ties it to the served model (model name, layer path, prompt tokens,
// token budget). Both throw ApiError with the offending field named in the message and `param`.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "engine/generator.h"
#include "engine/layer_path.h"
#include "model/chat_template.h"
#include "model/model.h"

namespace reprise::serve {

enum class Endpoint { Completions, ChatCompletions };

// Nesting deeper than this is refused before the JSON parser sees the body.
constexpr int kMaxJsonDepth = 64;
// Per request: stop sequences and their length, alternatives per token.
constexpr int kMaxStops = 16;
constexpr size_t kMaxStopBytes = 256;
constexpr int kMaxTopLogprobs = 20;
// Prompts in one completions request (each becomes a choice, run one after another).
constexpr int kMaxPrompts = 256;

// One completions prompt as sent: a text, or token ids.
struct PromptInput {
  std::optional<std::string> text;
  std::vector<int32_t> tokens;
};

// A request body after validation, before it meets the model.
struct ApiRequest {
  Endpoint endpoint = Endpoint::Completions;
  std::string model;                      // "" when the body names none
  std::optional<std::string> layer_path;  // extension field: path notation
  // Completions: one or more prompts (a string, a list of strings, token ids, a list of those).
  std::vector<PromptInput> prompts;
  bool echo = false;  // completions: the reply's text and logprobs start with the prompt's
  // Chat completions.
  std::vector<ChatMessage> messages;
  std::optional<int64_t> max_tokens;
  std::optional<float> temperature;  // unset: the server's default (ServedModel)
  float top_p = 1.0f;                // OpenAI's default: no nucleus cut
  int top_k = 0;                     // extension; 0 = off
  std::optional<uint64_t> seed;
  std::vector<std::string> stop;
  int logprobs = -1;        // -1 none; otherwise how many alternatives per token (0 = chosen only)
  bool ignore_eos = false;  // extension: generate past end-of-sequence (benchmarks)
  bool stream = false;
  bool include_usage = false;  // stream_options.include_usage
};

ApiRequest parse_request(Endpoint endpoint, std::string_view body);

// What the server serves: one model, the names it answers to and the paths behind them.
struct ServedModel {
  const Model* model = nullptr;
  std::string id;  // e.g. "stories260K"
  LayerPath default_path;
  std::vector<std::pair<std::string, LayerPath>> named_paths;  // answered as "<id>:<name>"
  // With `serve --router FILE`: the router's candidates (key, path), the plain path first, and
  // its feature layer; the model "<id>:auto" and "layer_path": "auto" then route per prompt.
  // Empty without a router.
  std::string router_file;
  std::vector<std::pair<std::string, LayerPath>> route_candidates;
  int route_feature_layer = 0;
  std::string chat_family;  // format_chat family for chat requests
  int n_ctx = 0;            // KV positions per slot
  int max_path_len = 0;     // longest layer path a request may ask for (KV memory per slot)
  float default_temperature = 1.0f;  // for requests without "temperature" (OpenAI's default)
  // Token-id completions prompts start with BOS when the vocabulary adds one (as text prompts
  // and `reprise eval` do) unless they already do; off: they run exactly as sent (OpenAI's and
  // llama.cpp's servers).
  bool bos_token_prompts = false;
};

// The names /v1/models lists, with their paths, in order (the plain id first, then the named
// paths, then "<id>:auto" when there is a router, its path nullptr: chosen per prompt).
std::vector<std::pair<std::string, const LayerPath*>> model_names(const ServedModel& served);

// The layer_path value (and model-name suffix) that asks for the router.
inline constexpr std::string_view kRoutedPath = "auto";

// One prompt of a job, tokenized.
struct JobPrompt {
  std::vector<int32_t> tokens;
  std::optional<std::string> text;  // a text prompt as sent (echoed; text_offset counts from it)
  // Leading tokens the server put before a token-id prompt (BOS, ServedModel::bos_token_prompts):
  // run, but not echoed.
  size_t n_hidden = 0;
};

// A request ready for a slot.
struct Job {
  Endpoint endpoint = Endpoint::Completions;
  std::string model;  // the name answered with
  LayerPath path;     // routed: the plain path, until the router picks one per prompt
  bool routed = false;
  std::vector<JobPrompt> prompts;  // chat: exactly one; completions: one choice each
  bool echo = false;
  GenerateOptions gen;
  bool stream = false;
  bool include_usage = false;
};

// Throws ApiError: 404 for an unknown model, 400 for a bad layer path ("auto" without a router
// included), a prompt the tokenizer rejects or one that does not fit the context. `random_seed` is
// used when the request has none.
Job resolve_request(const ApiRequest& req, const ServedModel& served, uint64_t random_seed);

}  // namespace reprise::serve
