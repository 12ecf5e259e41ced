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

// A request body after validation, before it meets the model.
struct ApiRequest {
  Endpoint endpoint = Endpoint::Completions;
  std::string model;                      // "" when the body names none
  std::optional<std::string> layer_path;  // extension field: path notation
  // Completions: a text prompt, or token ids.
  std::optional<std::string> prompt_text;
  std::vector<int32_t> prompt_tokens;
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
  std::string chat_family;  // format_chat family for chat requests
  int n_ctx = 0;            // KV positions per slot
  int max_path_len = 0;     // longest layer path a request may ask for (KV memory per slot)
  float default_temperature = 1.0f;  // for requests without "temperature" (OpenAI's default)
};

// The names /v1/models lists, with their paths, in order (the plain id first).
std::vector<std::pair<std::string, const LayerPath*>> model_names(const ServedModel& served);

// A request ready for a slot.
struct Job {
  Endpoint endpoint = Endpoint::Completions;
  std::string model;  // the name answered with
  LayerPath path;
  std::vector<int32_t> prompt;
  size_t prompt_text_bytes = 0;  // for completions' text_offset
  GenerateOptions gen;
  bool stream = false;
  bool include_usage = false;
};

// Throws ApiError: 404 for an unknown model, 400 for a bad layer path, a prompt the tokenizer
// rejects or one that does not fit the context. `random_seed` is used when the request has none.
Job resolve_request(const ApiRequest& req, const ServedModel& served, uint64_t random_seed);

}  // namespace reprise::serve
