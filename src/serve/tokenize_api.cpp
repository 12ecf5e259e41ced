#include "serve/tokenize_api.h"

#include <fmt/format.h>

#include "serve/api_error.h"
#include "serve/openai_response.h"
#include "util/error.h"

namespace reprise::serve {
namespace {

using json = nlohmann::ordered_json;

const Tokenizer& require(const Tokenizer* tok) {
  if (!tok) throw ApiError(400, "the model has no vocabulary to tokenize with");
  return *tok;
}

json parse_object(std::string_view body) {
  json j = json::parse(body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) throw ApiError(400, "request body must be a JSON object");
  return j;
}

// A special token's own text ("</s>"), or null when the vocabulary has none.
json special_text(const Tokenizer& tok, int32_t id) {
  const Vocab& v = tok.vocab();
  if (id < 0 || id >= v.size()) return nullptr;
  return v.tokens[id];
}

}  // namespace

json tokenize_reply(const Tokenizer* tokenizer, std::string_view body, int n_ctx) {
  const Tokenizer& tok = require(tokenizer);
  const json j = parse_object(body);
  auto p = j.find("prompt");
  if (p == j.end() || !p->is_string())
    throw ApiError(400, "'prompt' is required and must be a string", "prompt");
  EncodeOptions eo;
  eo.add_bos = true;
  if (auto a = j.find("add_special_tokens"); a != j.end() && !a->is_null()) {
    if (!a->is_boolean())
      throw ApiError(400, "'add_special_tokens' must be a boolean", "add_special_tokens");
    eo.add_bos = a->get<bool>();
  }
  eo.parse_special = true;
  std::vector<int32_t> ids;
  try {
    ids = tok.encode(p->get<std::string>(), eo);
  } catch (const Error& e) {
    throw ApiError(400, e.what(), "prompt");
  }
  return json{{"count", ids.size()}, {"max_model_len", n_ctx}, {"tokens", ids}};
}

json detokenize_reply(const Tokenizer* tokenizer, std::string_view body) {
  const Tokenizer& tok = require(tokenizer);
  const json j = parse_object(body);
  auto t = j.find("tokens");
  if (t == j.end() || !t->is_array())
    throw ApiError(400, "'tokens' is required and must be an array of token ids", "tokens");
  std::vector<int32_t> ids;
  for (size_t i = 0; i < t->size(); ++i) {
    const json& v = (*t)[i];
    if (!v.is_number_integer() || v.get<int64_t>() < 0 || v.get<int64_t>() >= tok.vocab().size())
      throw ApiError(400,
                     fmt::format("'tokens[{}]' must be a token id below {}", i, tok.vocab().size()),
                     "tokens");
    ids.push_back(static_cast<int32_t>(v.get<int64_t>()));
  }
  return json{{"prompt", token_text(tok.decode(ids))}};
}

json tokenizer_info(const Tokenizer* tokenizer) {
  const Tokenizer& tok = require(tokenizer);
  const Vocab& v = tok.vocab();
  return json{{"tokenizer_class", "reprise"},
              {"bos_token", special_text(tok, v.bos)},
              {"eos_token", special_text(tok, v.eos)},
              {"pad_token", special_text(tok, v.pad)},
              {"chat_template", v.chat_template.empty() ? json(nullptr) : json(v.chat_template)},
              {"add_bos_token", v.add_bos}};
}

}  // namespace reprise::serve
