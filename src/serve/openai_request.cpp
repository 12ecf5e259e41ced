#include "serve/openai_request.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <nlohmann/json.hpp>

#include "serve/api_error.h"
#include "util/error.h"

namespace reprise::serve {
namespace {

using nlohmann::json;

constexpr int64_t kMaxInt = std::numeric_limits<int32_t>::max();

ApiError bad(const std::string& param, const std::string& message) {
  return ApiError(400, message, param);
}

// Rejects bodies nested deeper than kMaxJsonDepth without parsing them, so that no JSON value
// of unbounded depth is ever built (or destroyed) for a hostile request.
void check_depth(std::string_view body) {
  int depth = 0;
  bool in_string = false, escaped = false;
  for (char c : body) {
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > kMaxJsonDepth)
        throw bad("", fmt::format("request body nests deeper than {} levels", kMaxJsonDepth));
    } else if (c == ']' || c == '}') {
      --depth;
    }
  }
}

// nlohmann's messages start with "[json.exception.parse_error.101] "; the tag helps no client.
std::string strip_json_tag(const std::string& what) {
  if (!what.starts_with("[json.exception.")) return what;
  const size_t end = what.find("] ");
  return end == std::string::npos ? what : what.substr(end + 2);
}

// A field, or nullptr when it is absent or null (clients send null for "not set").
const json* field(const json& body, const char* name) {
  auto it = body.find(name);
  if (it == body.end() || it->is_null()) return nullptr;
  return &*it;
}

std::string type_name(const json& v) {
  if (v.is_number_integer()) return "an integer";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_boolean()) return "a boolean";
  if (v.is_array()) return "an array";
  if (v.is_object()) return "an object";
  return "null";
}

int64_t get_int(const json& v, const std::string& name, int64_t lo, int64_t hi) {
  if (!v.is_number_integer())
    throw bad(name, fmt::format("'{}' must be an integer, got {}", name, type_name(v)));
  // number_unsigned above int64 cannot be read as int64; it is out of range anyway.
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi))
    throw bad(name, fmt::format("'{}' must be between {} and {}, got {}", name, lo, hi,
                                v.get<uint64_t>()));
  const int64_t x = v.get<int64_t>();
  if (x < lo || x > hi)
    throw bad(name, fmt::format("'{}' must be between {} and {}, got {}", name, lo, hi, x));
  return x;
}

double get_number(const json& v, const std::string& name, double lo, double hi) {
  if (!v.is_number())
    throw bad(name, fmt::format("'{}' must be a number, got {}", name, type_name(v)));
  const double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    throw bad(name, fmt::format("'{}' must be between {} and {}, got {}", name, lo, hi, x));
  return x;
}

bool get_bool(const json& v, const std::string& name) {
  if (!v.is_boolean())
    throw bad(name, fmt::format("'{}' must be a boolean, got {}", name, type_name(v)));
  return v.get<bool>();
}

std::string get_string(const json& v, const std::string& name) {
  if (!v.is_string())
    throw bad(name, fmt::format("'{}' must be a string, got {}", name, type_name(v)));
  return v.get<std::string>();
}

std::vector<int32_t> get_token_ids(const json& arr, const std::string& name) {
  std::vector<int32_t> ids;
  ids.reserve(arr.size());
  for (size_t i = 0; i < arr.size(); ++i)
    ids.push_back(
        static_cast<int32_t>(get_int(arr[i], fmt::format("{}[{}]", name, i), 0, kMaxInt)));
  return ids;
}

PromptInput parse_one_prompt(const json& p, const std::string& name) {
  PromptInput in;
  if (p.is_string()) {
    in.text = p.get<std::string>();
  } else if (p.is_array()) {
    if (p.empty()) throw bad("prompt", fmt::format("'{}' is empty", name));
    in.tokens = get_token_ids(p, name);
  } else {
    throw bad("prompt", fmt::format("'{}' must be a string or an array of token ids, got {}", name,
                                    type_name(p)));
  }
  return in;
}

// A prompt is a string, token ids, or a list of either (one choice per prompt).
void parse_prompt(const json& body, ApiRequest& r) {
  const json* p = field(body, "prompt");
  if (!p) throw bad("prompt", "'prompt' is required");
  if (p->is_string() || (p->is_array() && !p->empty() && (*p)[0].is_number())) {
    r.prompts.push_back(parse_one_prompt(*p, "prompt"));
    return;
  }
  if (!p->is_array())
    throw bad("prompt", fmt::format("'prompt' must be a string or an array of token ids, got {}",
                                    type_name(*p)));
  if (p->empty()) throw bad("prompt", "'prompt' is empty");
  if (p->size() > static_cast<size_t>(kMaxPrompts))
    throw bad("prompt", fmt::format("'prompt' has {} prompts; at most {} are allowed", p->size(),
                                    kMaxPrompts));
  for (size_t i = 0; i < p->size(); ++i)
    r.prompts.push_back(parse_one_prompt((*p)[i], fmt::format("prompt[{}]", i)));
}

// Message content: a string, null, or an array of parts of which only text is supported.
std::string message_content(const json& m, size_t i) {
  const std::string name = fmt::format("messages[{}].content", i);
  // Null content only comes with tool calls, which are not supported; a message without text is
  // a client bug worth naming.
  const json* c = field(m, "content");
  if (!c) throw bad(name, fmt::format("'{}' is required (a string or an array of parts)", name));
  if (c->is_string()) return c->get<std::string>();
  if (!c->is_array())
    throw bad(name, fmt::format("'{}' must be a string or an array of parts, got {}", name,
                                type_name(*c)));
  std::string text;
  for (size_t k = 0; k < c->size(); ++k) {
    const json& part = (*c)[k];
    const std::string pname = fmt::format("{}[{}]", name, k);
    if (!part.is_object()) throw bad(pname, fmt::format("'{}' must be an object", pname));
    const json* type = field(part, "type");
    const std::string t = type ? get_string(*type, pname + ".type") : "";
    if (t != "text")
      throw bad(pname, fmt::format("'{}': content parts of type '{}' are not supported (only "
                                   "text)",
                                   pname, t));
    const json* tx = field(part, "text");
    if (!tx) throw bad(pname + ".text", fmt::format("'{}.text' is required", pname));
    text += get_string(*tx, pname + ".text");
  }
  return text;
}

void parse_messages(const json& body, ApiRequest& r) {
  const json* msgs = field(body, "messages");
  if (!msgs) throw bad("messages", "'messages' is required");
  if (!msgs->is_array())
    throw bad("messages", fmt::format("'messages' must be an array, got {}", type_name(*msgs)));
  if (msgs->empty()) throw bad("messages", "'messages' is empty");
  for (size_t i = 0; i < msgs->size(); ++i) {
    const json& m = (*msgs)[i];
    const std::string name = fmt::format("messages[{}]", i);
    if (!m.is_object()) throw bad(name, fmt::format("'{}' must be an object", name));
    const json* role = field(m, "role");
    if (!role) throw bad(name + ".role", fmt::format("'{}.role' is required", name));
    ChatMessage cm;
    cm.role = get_string(*role, name + ".role");
    // OpenAI's newer name for the system role.
    if (cm.role == "developer") cm.role = "system";
    if (cm.role != "system" && cm.role != "user" && cm.role != "assistant")
      throw bad(name + ".role",
                fmt::format("'{}.role' is '{}'; supported roles are system (or developer), user "
                            "and assistant",
                            name, cm.role));
    cm.content = message_content(m, i);
    r.messages.push_back(std::move(cm));
  }
}

void parse_stop(const json& body, ApiRequest& r) {
  const json* s = field(body, "stop");
  if (!s) return;
  auto add = [&](const json& v, const std::string& name) {
    std::string text = get_string(v, name);
    if (text.size() > kMaxStopBytes)
      throw bad("stop", fmt::format("'{}' is longer than {} bytes", name, kMaxStopBytes));
    if (!text.empty()) r.stop.push_back(std::move(text));
  };
  if (s->is_string()) {
    add(*s, "stop");
  } else if (s->is_array()) {
    if (s->size() > static_cast<size_t>(kMaxStops))
      throw bad("stop", fmt::format("'stop' has {} sequences; at most {} are allowed", s->size(),
                                    kMaxStops));
    for (size_t i = 0; i < s->size(); ++i) add((*s)[i], fmt::format("stop[{}]", i));
  } else {
    throw bad("stop",
              fmt::format("'stop' must be a string or an array of strings, got {}", type_name(*s)));
  }
}

// Fields that would change the output if honoured: refused unless they ask for nothing.
void reject_unsupported(const json& body, Endpoint endpoint) {
  if (const json* n = field(body, "n"); n && get_int(*n, "n", 1, kMaxInt) != 1)
    throw bad("n", "only n = 1 is supported");
  if (const json* b = field(body, "best_of"); b && get_int(*b, "best_of", 1, kMaxInt) != 1)
    throw bad("best_of", "only best_of = 1 is supported");
  if (const json* s = field(body, "suffix"); s && !get_string(*s, "suffix").empty())
    throw bad("suffix", "suffix is not supported");
  for (const char* name : {"presence_penalty", "frequency_penalty"})
    if (const json* p = field(body, name); p && get_number(*p, name, -2, 2) != 0)
      throw bad(name, fmt::format("{} is not supported (only 0)", name));
  if (const json* lb = field(body, "logit_bias"); lb && !(lb->is_object() && lb->empty()))
    throw bad("logit_bias", "logit_bias is not supported");
  if (endpoint == Endpoint::ChatCompletions) {
    for (const char* name : {"tools", "functions"})
      if (const json* t = field(body, name); t && !(t->is_array() && t->empty()))
        throw bad(name, fmt::format("{} are not supported", name));
    if (const json* rf = field(body, "response_format")) {
      const json* type = rf->is_object() ? field(*rf, "type") : nullptr;
      if (!type || !type->is_string() || type->get<std::string>() != "text")
        throw bad("response_format", "only response_format {\"type\": \"text\"} is supported");
    }
  }
}

// The family's end-of-turn text, a stop sequence for chat replies in case the model writes it
// as plain text (e.g. a model whose vocabulary lacks the marker token).
std::string end_of_turn_text(const std::string& family) {
  if (family == "chatml") return "<|im_end|>";
  if (family == "llama3") return "<|eot_id|>";
  if (family == "gemma") return "<end_of_turn>";
  if (family == "llama2" || family == "mistral") return "</s>";
  return "";
}

}  // namespace

ApiRequest parse_request(Endpoint endpoint, std::string_view body_text) {
  check_depth(body_text);
  json body;
  try {
    body = json::parse(body_text);
  } catch (const json::exception& e) {
    throw bad("", "request body is not valid JSON: " + strip_json_tag(e.what()));
  }
  if (!body.is_object())
    throw bad("", fmt::format("request body must be a JSON object, got {}", type_name(body)));

  ApiRequest r;
  r.endpoint = endpoint;
  if (const json* m = field(body, "model")) r.model = get_string(*m, "model");
  if (const json* p = field(body, "layer_path")) r.layer_path = get_string(*p, "layer_path");
  if (endpoint == Endpoint::Completions)
    parse_prompt(body, r);
  else
    parse_messages(body, r);

  // Chat's newer name wins when both are sent, as in OpenAI's API.
  for (const char* name : {"max_tokens", "max_completion_tokens"})
    if (const json* v = field(body, name)) r.max_tokens = get_int(*v, name, 0, kMaxInt);
  if (const json* v = field(body, "temperature"))
    r.temperature = static_cast<float>(get_number(*v, "temperature", 0, 2));
  if (const json* v = field(body, "top_p"))
    r.top_p = static_cast<float>(get_number(*v, "top_p", 0, 1));
  if (const json* v = field(body, "top_k"))
    r.top_k = static_cast<int>(get_int(*v, "top_k", 0, kMaxInt));
  if (const json* v = field(body, "seed")) {
    if (!v->is_number_integer())
      throw bad("seed", fmt::format("'seed' must be an integer, got {}", type_name(*v)));
    // Any 64-bit pattern is a seed; negative ones wrap like a C cast.
    r.seed =
        v->is_number_unsigned() ? v->get<uint64_t>() : static_cast<uint64_t>(v->get<int64_t>());
  }
  parse_stop(body, r);

  if (endpoint == Endpoint::Completions) {
    // Completions: logprobs is the number of alternatives per token.
    if (const json* v = field(body, "logprobs"))
      r.logprobs = static_cast<int>(get_int(*v, "logprobs", 0, kMaxTopLogprobs));
  } else {
    // Chat: logprobs is a switch and top_logprobs the number of alternatives.
    const json* lp = field(body, "logprobs");
    const bool on = lp && get_bool(*lp, "logprobs");
    int top = 0;
    if (const json* v = field(body, "top_logprobs")) {
      top = static_cast<int>(get_int(*v, "top_logprobs", 0, kMaxTopLogprobs));
      if (!on) throw bad("top_logprobs", "'top_logprobs' needs 'logprobs': true");
    }
    r.logprobs = on ? top : -1;
  }

  if (const json* e = field(body, "echo")) {
    r.echo = get_bool(*e, "echo");
    if (r.echo && endpoint != Endpoint::Completions)
      throw bad("echo", "echo is only supported by /v1/completions");
  }
  if (const json* v = field(body, "ignore_eos")) r.ignore_eos = get_bool(*v, "ignore_eos");
  if (const json* v = field(body, "stream")) r.stream = get_bool(*v, "stream");
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object())
      throw bad("stream_options",
                fmt::format("'stream_options' must be an object, got {}", type_name(*so)));
    if (const json* u = field(*so, "include_usage"))
      r.include_usage = get_bool(*u, "stream_options.include_usage");
  }
  reject_unsupported(body, endpoint);
  if (r.stream && r.echo) throw bad("echo", "echo is not supported with stream");
  if (r.stream && r.prompts.size() > 1)
    throw bad("prompt", "several prompts are not supported with stream; send one per request");
  return r;
}

std::vector<std::pair<std::string, const LayerPath*>> model_names(const ServedModel& served) {
  std::vector<std::pair<std::string, const LayerPath*>> out;
  out.emplace_back(served.id, &served.default_path);
  for (const auto& [name, path] : served.named_paths)
    out.emplace_back(served.id + ":" + name, &path);
  if (!served.route_candidates.empty())
    out.emplace_back(served.id + ":" + std::string(kRoutedPath), nullptr);
  return out;
}

namespace {

// The model name → the job's path (or its router), checked against the server's limits.
void resolve_path(const ApiRequest& req, const ServedModel& served, Job& job) {
  const LayerPath* path = nullptr;
  bool known_model = false;
  job.model = req.model.empty() ? served.id : req.model;
  for (const auto& [name, p] : model_names(served))
    if (name == job.model) path = p, known_model = true;
  if (!known_model) {
    std::string known;
    for (const auto& [name, p] : model_names(served)) known += (known.empty() ? "" : ", ") + name;
    throw ApiError(
        404, fmt::format("The model '{}' does not exist (this server has: {})", job.model, known),
        "model", "model_not_found");
  }
  // "<id>:auto" has no path of its own: the router picks one per prompt, unless the request
  // names a path.
  job.routed = !path;
  if (job.routed) job.path = served.route_candidates.at(0).second;
  if (path) job.path = *path;
  if (req.layer_path == kRoutedPath) {
    if (served.route_candidates.empty())
      throw bad("layer_path",
                "layer path 'auto' needs a router: start the server with --router ROUTER.json "
                "(made by `reprise route train`)");
    job.routed = true;
    job.path = served.route_candidates.at(0).second;
  } else if (req.layer_path) {
    job.routed = false;
    try {
      job.path = parse_layer_path(*req.layer_path, served.model->hparams().n_layer);
    } catch (const Error& e) {
      throw bad("layer_path", e.what());
    }
  }
  // An empty path would fail only once a slot tried to run it, after the 200 went out.
  if (job.path.layers.empty())
    throw bad("layer_path",
              fmt::format("layer path '{}' runs no layers; a path needs at least one layer",
                          req.layer_path.value_or(job.model)));
  if (job.path.size() > served.max_path_len)
    throw bad(
        "layer_path",
        fmt::format("layer path '{}' has {} positions; this server allows at most {}",
                    req.layer_path.value_or(job.model), job.path.size(), served.max_path_len));
}

// A completions prompt given as token ids, checked against the vocabulary; with
// --bos-token-prompts the model's BOS is put in front when missing (and hidden from echoes).
JobPrompt token_prompt(const std::vector<int32_t>& tokens, const ServedModel& served) {
  const Model& model = *served.model;
  JobPrompt jp;
  jp.tokens = tokens;
  for (int32_t id : jp.tokens)
    if (id >= model.hparams().n_vocab)
      throw bad("prompt", fmt::format("prompt token id {} is out of range (the vocabulary has {} "
                                      "tokens)",
                                      id, model.hparams().n_vocab));
  const Vocab* v = model.tokenizer() ? &model.tokenizer()->vocab() : nullptr;
  if (served.bos_token_prompts && v && v->add_bos && v->bos >= 0 &&
      (jp.tokens.empty() || jp.tokens[0] != v->bos)) {
    jp.tokens.insert(jp.tokens.begin(), v->bos);
    jp.n_hidden = 1;
  }
  return jp;
}

// The prompts (or the chat rendered by its template) → tokens that fit the context; the stop
// strings then include the chat family's end-of-turn text.
void resolve_prompts(const ApiRequest& req, const ServedModel& served, Job& job,
                     std::vector<std::string>& stops) {
  const Tokenizer* tok = served.model->tokenizer();
  const char* prompt_param = req.endpoint == Endpoint::Completions ? "prompt" : "messages";
  auto encode = [&](const std::string& text, bool parse_special) {
    if (!tok)
      throw bad(prompt_param,
                "the model has no vocabulary: send the prompt as an array of token ids");
    EncodeOptions eo;
    eo.add_bos = true;
    eo.parse_special = parse_special;
    try {
      return tok->encode(text, eo);
    } catch (const Error& e) {
      throw bad(prompt_param, e.what());
    }
  };
  if (req.endpoint == Endpoint::Completions) {
    for (const PromptInput& in : req.prompts) {
      if (!in.text) {
        job.prompts.push_back(token_prompt(in.tokens, served));
        continue;
      }
      // Like `reprise run`: special-token texts in a plain prompt stay text.
      job.prompts.push_back({encode(*in.text, /*parse_special=*/false), in.text});
    }
  } else {
    std::string text;
    try {
      text = format_chat(served.chat_family, req.messages, /*add_generation_prompt=*/true);
    } catch (const Error& e) {
      throw bad("messages", e.what());
    }
    // The template writes its markers as token texts, so they must become those tokens.
    job.prompts.push_back({encode(text, /*parse_special=*/true), std::nullopt});
    if (const std::string eot = end_of_turn_text(served.chat_family); !eot.empty())
      stops.push_back(eot);
  }
  for (const JobPrompt& jp : job.prompts) {
    if (jp.tokens.empty()) throw bad(prompt_param, "the prompt has no tokens");
    const int n_prompt = static_cast<int>(jp.tokens.size());
    if (n_prompt >= served.n_ctx)
      throw ApiError(400,
                     fmt::format("the prompt has {} tokens but the context holds {} (one must be "
                                 "left to generate)",
                                 n_prompt, served.n_ctx),
                     prompt_param, "context_length_exceeded");
  }
}

}  // namespace

Job resolve_request(const ApiRequest& req, const ServedModel& served, uint64_t random_seed) {
  Job job;
  job.endpoint = req.endpoint;
  job.stream = req.stream;
  job.include_usage = req.include_usage;
  job.echo = req.echo;
  resolve_path(req, served, job);
  std::vector<std::string> stops = req.stop;
  resolve_prompts(req, served, job, stops);

  // Generation options. Without max_tokens a completion gets OpenAI's 16 tokens and a chat
  // reply runs until the context is full; the context bounds every request anyway.
  GenerateOptions& g = job.gen;
  const int64_t fallback = req.endpoint == Endpoint::Completions ? 16 : served.n_ctx;
  g.max_tokens =
      static_cast<int>(std::min<int64_t>(req.max_tokens.value_or(fallback), served.n_ctx));
  g.sampler.temperature = req.temperature.value_or(served.default_temperature);
  g.sampler.top_p = req.top_p;  // 0 keeps only the most likely token, as in the CLI
  g.sampler.top_k = req.top_k;
  g.sampler.seed = req.seed.value_or(random_seed);
  g.stop = std::move(stops);
  g.logprobs = req.logprobs;
  g.ignore_eos = req.ignore_eos;
  g.invalid_utf8 = Utf8Stream::Invalid::Replace;
  return job;
}

}  // namespace reprise::serve
