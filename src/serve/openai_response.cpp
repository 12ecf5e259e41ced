#include "serve/openai_response.h"

#include <fmt/format.h>

#include "model/utf8_stream.h"

namespace reprise::serve {
namespace {

using json = nlohmann::ordered_json;

const char* object_name(Endpoint e, bool chunk) {
  if (e == Endpoint::Completions) return "text_completion";  // streamed chunks too
  return chunk ? "chat.completion.chunk" : "chat.completion";
}

json header_json(const ReplyHeader& h, bool chunk) {
  json out{{"id", h.id},
           {"object", object_name(h.endpoint, chunk)},
           {"created", h.created},
           {"model", h.model},
           {"layer_path", h.layer_path}};
  if (!h.route.is_null()) out["route"] = h.route;
  return out;
}

json bytes_json(std::string_view piece) {
  json b = json::array();
  for (char c : piece) b.push_back(static_cast<int>(static_cast<unsigned char>(c)));
  return b;
}

std::string piece_of(const Tokenizer* tok, int32_t id) {
  return tok ? tok->token_to_piece(id) : std::string();
}

}  // namespace

std::string make_reply_id(Endpoint endpoint, uint64_t random) {
  // 96 bits of id from one 64-bit draw stirred twice (splitmix64 steps), enough to be unique.
  auto mix = [](uint64_t& x) {
    uint64_t z = (x += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  const uint64_t a = mix(random), b = mix(random);
  return fmt::format("{}-{:016x}{:08x}", endpoint == Endpoint::Completions ? "cmpl" : "chatcmpl", a,
                     static_cast<uint32_t>(b));
}

std::string token_text(std::string_view piece) {
  Utf8Stream s(Utf8Stream::Invalid::Replace);
  std::string out = s.push(piece);
  return out + s.flush();
}

json logprobs_json(Endpoint endpoint, std::span<const GeneratedToken> tokens,
                   const Tokenizer* tokenizer, size_t text_offset_base) {
  if (endpoint == Endpoint::Completions) {
    json toks = json::array(), lps = json::array(), tops = json::array(), offs = json::array();
    for (const GeneratedToken& t : tokens) {
      toks.push_back(token_text(t.piece));
      lps.push_back(t.logprob);
      json top = json::object();
      for (const TokenLogprob& alt : t.top) {
        const std::string text = token_text(piece_of(tokenizer, alt.token));
        // Two tokens can print alike; the object keeps the likelier one.
        if (!top.contains(text)) top[text] = alt.logprob;
      }
      tops.push_back(std::move(top));
      offs.push_back(text_offset_base + t.text_offset);
    }
    return json{{"tokens", std::move(toks)},
                {"token_logprobs", std::move(lps)},
                {"top_logprobs", std::move(tops)},
                {"text_offset", std::move(offs)}};
  }
  json content = json::array();
  for (const GeneratedToken& t : tokens) {
    json top = json::array();
    for (const TokenLogprob& alt : t.top) {
      const std::string piece = piece_of(tokenizer, alt.token);
      top.push_back(
          {{"token", token_text(piece)}, {"logprob", alt.logprob}, {"bytes", bytes_json(piece)}});
    }
    content.push_back({{"token", token_text(t.piece)},
                       {"logprob", t.logprob},
                       {"bytes", bytes_json(t.piece)},
                       {"top_logprobs", std::move(top)}});
  }
  return json{{"content", std::move(content)}};
}

json scored_logprobs_json(std::span<const ScoredToken> tokens, const Tokenizer* tokenizer) {
  json toks = json::array(), lps = json::array(), tops = json::array(), offs = json::array();
  for (const ScoredToken& t : tokens) {
    toks.push_back(token_text(piece_of(tokenizer, t.id)));
    offs.push_back(t.text_offset);
    if (!t.logprob) {
      lps.push_back(nullptr);
      tops.push_back(nullptr);
      continue;
    }
    lps.push_back(*t.logprob);
    json top = json::object();
    for (const auto& [id, lp] : t.top) {
      const std::string text = token_text(piece_of(tokenizer, id));
      if (!top.contains(text)) top[text] = lp;  // two tokens can print alike: keep the likelier
    }
    tops.push_back(std::move(top));
  }
  return json{{"tokens", std::move(toks)},
              {"token_logprobs", std::move(lps)},
              {"top_logprobs", std::move(tops)},
              {"text_offset", std::move(offs)}};
}

json usage_json(int prompt_tokens, int completion_tokens) {
  return json{{"prompt_tokens", prompt_tokens},
              {"completion_tokens", completion_tokens},
              {"total_tokens", prompt_tokens + completion_tokens}};
}

std::string finish_reason_text(FinishReason r) {
  if (r == FinishReason::Length) return "length";
  // Not one of OpenAI's values: the server's --timeout cut the reply short, which "length" would
  // misreport as the token budget.
  if (r == FinishReason::Timeout) return "timeout";
  return "stop";
}

json completion_reply(const ReplyHeader& h, const GenerationResult& r, const json& logprobs) {
  json choice{
      {"index", 0}, {"logprobs", logprobs}, {"finish_reason", finish_reason_text(r.finish)}};
  if (h.endpoint == Endpoint::Completions)
    choice["text"] = r.text;
  else
    choice["message"] = {{"role", "assistant"}, {"content", r.text}};
  json out = header_json(h, /*chunk=*/false);
  out["choices"] = json::array({std::move(choice)});
  out["usage"] = usage_json(r.prompt_tokens, r.completion_tokens);
  return out;
}

json completions_reply(const ReplyHeader& h, std::span<const CompletionChoice> choices) {
  json arr = json::array();
  int n_prompt = 0, n_completion = 0;
  for (size_t i = 0; i < choices.size(); ++i) {
    const CompletionChoice& c = choices[i];
    arr.push_back(json{{"index", i},
                       {"text", c.text},
                       {"logprobs", c.logprobs},
                       {"finish_reason", finish_reason_text(c.finish)}});
    if (!c.route.is_null()) {
      arr.back()["layer_path"] = c.layer_path;
      arr.back()["route"] = c.route;
    }
    n_prompt += c.prompt_tokens;
    n_completion += c.completion_tokens;
  }
  json out = header_json(h, /*chunk=*/false);
  out["choices"] = std::move(arr);
  out["usage"] = usage_json(n_prompt, n_completion);
  return out;
}

json stream_chunk(const ReplyHeader& h, const StreamChunk& chunk, UsageField usage) {
  const auto& [text, logprobs, first, finish] = chunk;
  json choice{{"index", 0},
              {"logprobs", logprobs},
              {"finish_reason", finish ? json(finish_reason_text(*finish)) : json(nullptr)}};
  if (h.endpoint == Endpoint::Completions) {
    choice["text"] = text;
  } else {
    json delta = json::object();
    if (first) delta["role"] = "assistant";
    // The closing chunk has an empty delta; the others carry content (the first possibly "").
    if (first || !finish || !text.empty()) delta["content"] = text;
    choice["delta"] = std::move(delta);
  }
  json out = header_json(h, /*chunk=*/true);
  out["choices"] = json::array({std::move(choice)});
  if (usage == UsageField::Null) out["usage"] = nullptr;
  return out;
}

json usage_chunk(const ReplyHeader& h, int prompt_tokens, int completion_tokens) {
  json out = header_json(h, /*chunk=*/true);
  out["choices"] = json::array();
  out["usage"] = usage_json(prompt_tokens, completion_tokens);
  return out;
}

json route_json(const std::string& candidate, double probability, int feature_layer) {
  return json{
      {"candidate", candidate}, {"probability", probability}, {"feature_layer", feature_layer}};
}

std::string dump(const json& j) {
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string sse_event(const json& payload) {
  return "data: " + dump(payload) + "\n\n";
}

}  // namespace reprise::serve
