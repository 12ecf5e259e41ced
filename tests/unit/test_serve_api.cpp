// The server's HTTP-independent parts: request validation, resolution against the model,
// response shapes, SSE framing.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <thread>

#include "serve/api_error.h"
#include "serve/openai_request.h"
#include "serve/openai_response.h"
#include "serve/slot_pool.h"
#include "support/test_support.h"

namespace reprise::serve {
namespace {

using nlohmann::json;

const Model& model() {
  static const std::unique_ptr<Model> m = Model::load(test::default_model());
  return *m;
}

ServedModel served() {
  ServedModel s;
  s.model = &model();
  s.id = "stories260K";
  s.default_path = LayerPath::identity(5);
  s.named_paths = {{"deep", parse_layer_path("repeat:1:4", 5)}};
  s.chat_family = "chatml";
  s.n_ctx = 64;
  s.max_path_len = 20;
  return s;
}

// The ApiError a body gives, or status 0 when it parses.
ApiError error_of(Endpoint e, const std::string& body) {
  try {
    parse_request(e, body);
  } catch (const ApiError& err) {
    return err;
  }
  return ApiError(0, "");
}

ApiError resolve_error(Endpoint e, const std::string& body) {
  try {
    resolve_request(parse_request(e, body), served(), 1);
  } catch (const ApiError& err) {
    return err;
  }
  return ApiError(0, "");
}

TEST(ServeRequest, CompletionFields) {
  const ApiRequest r = parse_request(
      Endpoint::Completions,
      R"({"model":"m","prompt":"hi","max_tokens":7,"temperature":0.5,"top_p":0.9,"top_k":5,
          "seed":-1,"stop":["a","b"],"logprobs":2,"stream":true,
          "stream_options":{"include_usage":true},"layer_path":"repeat:1:4","user":"x"})");
  EXPECT_EQ(r.model, "m");
  ASSERT_EQ(r.prompts.size(), 1u);
  EXPECT_EQ(*r.prompts[0].text, "hi");
  EXPECT_EQ(*r.max_tokens, 7);
  EXPECT_FLOAT_EQ(*r.temperature, 0.5f);
  EXPECT_FLOAT_EQ(r.top_p, 0.9f);
  EXPECT_EQ(r.top_k, 5);
  EXPECT_EQ(*r.seed, ~uint64_t{0});
  EXPECT_EQ(r.stop, (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(r.logprobs, 2);
  EXPECT_TRUE(r.stream);
  EXPECT_TRUE(r.include_usage);
  EXPECT_EQ(*r.layer_path, "repeat:1:4");
}

TEST(ServeRequest, PromptForms) {
  EXPECT_EQ(parse_request(Endpoint::Completions, R"({"prompt":[1,2,3]})").prompts[0].tokens,
            (std::vector<int32_t>{1, 2, 3}));
  EXPECT_EQ(parse_request(Endpoint::Completions, R"({"prompt":[[4,5]]})").prompts[0].tokens,
            (std::vector<int32_t>{4, 5}));
  EXPECT_EQ(*parse_request(Endpoint::Completions, R"({"prompt":["x"]})").prompts[0].text, "x");
  // A list of prompts, in any mix of forms: one choice each, in order.
  const ApiRequest batch =
      parse_request(Endpoint::Completions, R"({"prompt":["x",[7,8],"y"],"echo":true})");
  ASSERT_EQ(batch.prompts.size(), 3u);
  EXPECT_EQ(*batch.prompts[0].text, "x");
  EXPECT_EQ(batch.prompts[1].tokens, (std::vector<int32_t>{7, 8}));
  EXPECT_EQ(*batch.prompts[2].text, "y");
  EXPECT_TRUE(batch.echo);
  EXPECT_EQ(error_of(Endpoint::Completions, R"({"prompt":["x",[]]})").what(),
            std::string("'prompt[1]' is empty"));
  EXPECT_EQ(error_of(Endpoint::Completions, R"({"prompt":["x",3.5]})").param(), "prompt");
  EXPECT_EQ(error_of(Endpoint::Completions, R"({"prompt":["x","y"],"stream":true})").param(),
            "prompt");
  EXPECT_EQ(error_of(Endpoint::Completions, R"({"prompt":"x","echo":true,"stream":true})").param(),
            "echo");
  EXPECT_EQ(error_of(Endpoint::ChatCompletions,
                     R"({"messages":[{"role":"user","content":"x"}],"echo":true})")
                .param(),
            "echo");
  EXPECT_EQ(error_of(Endpoint::Completions, R"({"prompt":[]})").param(), "prompt");
  EXPECT_EQ(error_of(Endpoint::Completions, R"({"prompt":[1,-2]})").param(), "prompt[1]");
  EXPECT_EQ(error_of(Endpoint::Completions, R"({"prompt":[1,"a"]})").param(), "prompt[1]");
  EXPECT_EQ(error_of(Endpoint::Completions, R"({"max_tokens":3})").param(), "prompt");
}

TEST(ServeRequest, ChatMessages) {
  const ApiRequest r = parse_request(Endpoint::ChatCompletions, R"({"messages":[
      {"role":"developer","content":"be brief"},
      {"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]},
      {"role":"assistant","content":""}],"logprobs":true,"top_logprobs":3,
      "max_completion_tokens":9})");
  ASSERT_EQ(r.messages.size(), 3u);
  EXPECT_EQ(r.messages[0].role, "system");
  EXPECT_EQ(r.messages[1].content, "ab");
  EXPECT_EQ(r.messages[2].content, "");
  // No text (null comes only with tool calls, which are unsupported) and unknown roles are 400s
  // naming the field, not turns silently rendered as empty or as an unknown speaker.
  ApiError e = error_of(Endpoint::ChatCompletions,
                        R"({"messages":[{"role":"user","content":"x"},
                                        {"role":"assistant","content":null}]})");
  EXPECT_EQ(e.status(), 400);
  EXPECT_EQ(e.param(), "messages[1].content");
  e = error_of(Endpoint::ChatCompletions, R"({"messages":[{"role":"wizard","content":"x"}]})");
  EXPECT_EQ(e.status(), 400);
  EXPECT_EQ(e.param(), "messages[0].role");
  EXPECT_CONTAINS(e.what(), "'wizard'");
  EXPECT_EQ(error_of(Endpoint::ChatCompletions, R"({"messages":[{"role":"tool","content":"x"}]})")
                .param(),
            "messages[0].role");
  EXPECT_EQ(r.logprobs, 3);
  EXPECT_EQ(*r.max_tokens, 9);
  EXPECT_EQ(error_of(Endpoint::ChatCompletions, R"({"messages":[]})").param(), "messages");
  EXPECT_EQ(error_of(Endpoint::ChatCompletions, R"({"messages":[{"content":"x"}]})").param(),
            "messages[0].role");
  EXPECT_EQ(error_of(Endpoint::ChatCompletions,
                     R"({"messages":[{"role":"user","content":[{"type":"image_url"}]}]})")
                .param(),
            "messages[0].content[0]");
  EXPECT_EQ(error_of(Endpoint::ChatCompletions,
                     R"({"messages":[{"role":"user","content":"x"}],"top_logprobs":2})")
                .param(),
            "top_logprobs");
}

TEST(ServeRequest, BadParametersNameTheField) {
  struct Case {
    const char* body;
    const char* param;
  };
  const Case cases[] = {
      {R"({"prompt":"x","max_tokens":"5"})", "max_tokens"},
      {R"({"prompt":"x","max_tokens":-1})", "max_tokens"},
      {R"({"prompt":"x","max_tokens":1.5})", "max_tokens"},
      {R"({"prompt":"x","max_tokens":18446744073709551615})", "max_tokens"},
      {R"({"prompt":"x","max_tokens":123456789012345678901234567890})", "max_tokens"},
      {R"({"prompt":"x","temperature":3})", "temperature"},
      {R"({"prompt":"x","temperature":"hot"})", "temperature"},
      {R"({"prompt":"x","top_p":1.5})", "top_p"},
      {R"({"prompt":"x","top_k":-3})", "top_k"},
      {R"({"prompt":"x","seed":1.5})", "seed"},
      {R"({"prompt":"x","stop":5})", "stop"},
      {R"({"prompt":"x","stop":["a",1]})", "stop[1]"},
      {R"({"prompt":"x","logprobs":21})", "logprobs"},
      {R"({"prompt":"x","stream":"yes"})", "stream"},
      {R"({"prompt":"x","model":7})", "model"},
      {R"({"prompt":"x","layer_path":[1,2]})", "layer_path"},
      {R"({"prompt":"x","n":2})", "n"},
      {R"({"prompt":"x","echo":1})", "echo"},
      {R"({"prompt":"x","presence_penalty":0.5})", "presence_penalty"},
      {R"({"prompt":"x","logit_bias":{"5":1}})", "logit_bias"},
      {R"({"prompt":"x","stream_options":3})", "stream_options"},
  };
  for (const Case& c : cases) {
    const ApiError e = error_of(Endpoint::Completions, c.body);
    EXPECT_EQ(e.status(), 400) << c.body;
    EXPECT_EQ(e.param(), c.param) << c.body;
    EXPECT_NE(std::string(e.what()).find(c.param), std::string::npos) << e.what();
  }
  // Null means "not set".
  EXPECT_EQ(
      error_of(Endpoint::Completions, R"({"prompt":"x","max_tokens":null,"stop":null})").status(),
      0);
}

TEST(ServeRequest, MalformedBodies) {
  for (const std::string& body : std::vector<std::string>{
           "", "{", "{\"prompt\":", "[]", "\"x\"", "null", "{\"prompt\":\"\xff\"}", "{}}",
           "{\"prompt\":\"x\",}", std::string(200, '[') + std::string(200, ']')}) {
    const ApiError e = error_of(Endpoint::Completions, body);
    EXPECT_EQ(e.status(), 400) << body;
    // The message must survive being written as JSON (no raw invalid UTF-8 breaks the dump).
    EXPECT_FALSE(dump(error_json(e)).empty());
  }
}

TEST(ServeResolve, ModelsPathsAndPrompt) {
  Job j = resolve_request(parse_request(Endpoint::Completions, R"({"prompt":"Once upon a time"})"),
                          served(), 99);
  EXPECT_EQ(j.model, "stories260K");
  EXPECT_EQ(j.path, LayerPath::identity(5));
  EXPECT_EQ(j.prompts.at(0).tokens,
            model().tokenizer()->encode("Once upon a time", EncodeOptions{}));
  EXPECT_EQ(j.gen.max_tokens, 16);  // OpenAI's default for completions
  EXPECT_EQ(j.gen.sampler.seed, 99u);
  EXPECT_EQ(j.gen.invalid_utf8, Utf8Stream::Invalid::Replace);

  j = resolve_request(
      parse_request(Endpoint::Completions, R"({"model":"stories260K:deep","prompt":[1,2]})"),
      served(), 0);
  EXPECT_EQ(j.path.canonical(), "0..3,1..4");
  // layer_path overrides the named model's path.
  j = resolve_request(parse_request(Endpoint::Completions,
                                    R"({"model":"stories260K:deep","prompt":[1],
                                        "layer_path":"skip:2:3","max_tokens":100000})"),
                      served(), 0);
  EXPECT_EQ(j.path.canonical(), "0..1,3..4");
  EXPECT_EQ(j.gen.max_tokens, 64);  // capped by the context
}

// A request without temperature gets the server's default (serve --temp; OpenAI's 1 unless set);
// top_p 0 reaches the sampler as 0, which keeps the most likely token as in the CLI.
TEST(ServeResolve, DefaultTemperatureAndTopPZero) {
  const ApiRequest req = parse_request(Endpoint::Completions, R"({"prompt":[1],"top_p":0})");
  EXPECT_FALSE(req.temperature.has_value());
  ServedModel s = served();
  EXPECT_FLOAT_EQ(resolve_request(req, s, 0).gen.sampler.temperature, 1.0f);
  s.default_temperature = 0.25f;
  const Job j = resolve_request(req, s, 0);
  EXPECT_FLOAT_EQ(j.gen.sampler.temperature, 0.25f);
  EXPECT_EQ(j.gen.sampler.top_p, 0.0f);
  EXPECT_NO_THROW(Sampler{j.gen.sampler});
}

TEST(ServeResolve, Errors) {
  ApiError e = resolve_error(Endpoint::Completions, R"({"model":"gpt-4","prompt":"x"})");
  EXPECT_EQ(e.status(), 404);
  EXPECT_EQ(e.code(), "model_not_found");
  e = resolve_error(Endpoint::Completions, R"({"prompt":"x","layer_path":"0,9"})");
  EXPECT_EQ(e.status(), 400);
  EXPECT_EQ(e.param(), "layer_path");
  EXPECT_NE(std::string(e.what()).find("'9'"), std::string::npos) << e.what();
  e = resolve_error(Endpoint::Completions, R"({"prompt":"x","layer_path":"repeat:0:5:8"})");
  EXPECT_EQ(e.param(), "layer_path");  // 40 positions > max_path_len 20
  // The message echoes what the client sent, not the 40-entry expansion.
  EXPECT_CONTAINS(e.what(), "layer path 'repeat:0:5:8' has 40 positions");
  e = resolve_error(Endpoint::Completions, R"({"prompt":"x","layer_path":"skip:0:5"})");
  EXPECT_EQ(e.status(), 400);
  EXPECT_EQ(e.param(), "layer_path");
  EXPECT_CONTAINS(e.what(), "layer path 'skip:0:5' runs no layers");
  e = resolve_error(Endpoint::Completions, R"({"prompt":[1,512]})");
  EXPECT_EQ(e.param(), "prompt");
  std::string long_prompt;
  for (int i = 0; i < 20; ++i) long_prompt += "Once upon a time ";
  e = resolve_error(Endpoint::Completions, R"({"prompt":")" + long_prompt + "\"}");
  EXPECT_EQ(e.code(), "context_length_exceeded");
}

TEST(ServeResolve, ChatUsesTheFallbackTemplateAndItsEndMarker) {
  const Job j = resolve_request(
      parse_request(Endpoint::ChatCompletions, R"({"messages":[{"role":"user","content":"Hi"}]})"),
      served(), 0);
  const std::string text = "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n";
  EncodeOptions eo;
  eo.parse_special = true;
  EXPECT_EQ(j.prompts.at(0).tokens, model().tokenizer()->encode(text, eo));
  EXPECT_EQ(j.gen.stop, std::vector<std::string>{"<|im_end|>"});
  EXPECT_EQ(j.gen.max_tokens, 64);
}

ReplyHeader header(Endpoint e) {
  return ReplyHeader{e, "id-1", 1700000000, "m", "0..4"};
}

GenerationResult result(const std::string& text, FinishReason f) {
  GenerationResult r;
  r.text = text;
  r.finish = f;
  r.prompt_tokens = 3;
  r.completion_tokens = 2;
  return r;
}

TEST(ServeResponse, CompletionShape) {
  const json j = json::parse(dump(completion_reply(header(Endpoint::Completions),
                                                   result("ab", FinishReason::Length), nullptr)));
  EXPECT_EQ(j["object"], "text_completion");
  EXPECT_EQ(j["id"], "id-1");
  EXPECT_EQ(j["created"], 1700000000);
  EXPECT_EQ(j["model"], "m");
  EXPECT_EQ(j["layer_path"], "0..4");
  EXPECT_EQ(j["choices"][0]["text"], "ab");
  EXPECT_EQ(j["choices"][0]["index"], 0);
  EXPECT_EQ(j["choices"][0]["finish_reason"], "length");
  EXPECT_TRUE(j["choices"][0]["logprobs"].is_null());
  EXPECT_EQ(j["usage"],
            (json{{"prompt_tokens", 3}, {"completion_tokens", 2}, {"total_tokens", 5}}));
}

TEST(ServeResponse, ChatShapeAndChunks) {
  const ReplyHeader h = header(Endpoint::ChatCompletions);
  const json j = json::parse(dump(completion_reply(h, result("hey", FinishReason::Stop), nullptr)));
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"], (json{{"role", "assistant"}, {"content", "hey"}}));
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");

  const json first = json::parse(dump(stream_chunk(h, {.first = true}, UsageField::Omit)));
  EXPECT_EQ(first["object"], "chat.completion.chunk");
  EXPECT_EQ(first["choices"][0]["delta"], (json{{"role", "assistant"}, {"content", ""}}));
  EXPECT_TRUE(first["choices"][0]["finish_reason"].is_null());
  EXPECT_FALSE(first.contains("usage"));
  const json mid = json::parse(dump(stream_chunk(h, {.text = "x"}, UsageField::Null)));
  EXPECT_EQ(mid["choices"][0]["delta"], (json{{"content", "x"}}));
  EXPECT_TRUE(mid["usage"].is_null());
  const json last =
      json::parse(dump(stream_chunk(h, {.finish = FinishReason::Length}, UsageField::Omit)));
  EXPECT_EQ(last["choices"][0]["delta"], json::object());
  EXPECT_EQ(last["choices"][0]["finish_reason"], "length");
  const json usage = json::parse(dump(usage_chunk(h, 4, 6)));
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"]["total_tokens"], 10);
}

TEST(ServeResponse, LogprobShapes) {
  const Tokenizer* tok = model().tokenizer();
  GeneratedToken t;
  t.id = 403;
  t.piece = tok->token_to_piece(403);
  t.text_offset = 0;
  t.logprob = -0.5f;
  t.top = {{403, -0.5f}, {407, -1.5f}};
  GeneratedToken partial;  // half of a character: shown as U+FFFD, raw in bytes
  partial.id = 230;
  partial.piece = "\xE2";
  partial.text_offset = t.piece.size();
  partial.logprob = -2;
  const std::vector<GeneratedToken> toks = {t, partial};

  const json c = json::parse(dump(logprobs_json(Endpoint::Completions, toks, tok, 10)));
  EXPECT_EQ(c["tokens"][0], t.piece);
  EXPECT_EQ(c["tokens"][1], "\xEF\xBF\xBD");
  EXPECT_FLOAT_EQ(c["token_logprobs"][0].get<float>(), -0.5f);
  EXPECT_EQ(c["top_logprobs"][0].size(), 2u);
  EXPECT_FLOAT_EQ(c["top_logprobs"][0][t.piece].get<float>(), -0.5f);
  EXPECT_EQ(c["text_offset"][0], 10);
  EXPECT_EQ(c["text_offset"][1], 10 + t.piece.size());

  const json ch = json::parse(dump(logprobs_json(Endpoint::ChatCompletions, toks, tok, 0)));
  ASSERT_EQ(ch["content"].size(), 2u);
  EXPECT_EQ(ch["content"][0]["token"], t.piece);
  EXPECT_EQ(ch["content"][0]["top_logprobs"].size(), 2u);
  EXPECT_EQ(ch["content"][0]["top_logprobs"][1]["token"], tok->token_to_piece(407));
  EXPECT_EQ(ch["content"][1]["bytes"], json::array({0xE2}));
  EXPECT_EQ(ch["content"][1]["top_logprobs"], json::array());
}

TEST(ServeResponse, ErrorShapeAndSse) {
  const json e = json::parse(dump(error_json(ApiError(400, "bad 'x'", "x"))));
  EXPECT_EQ(e, (json{{"error",
                      {{"message", "bad 'x'"},
                       {"type", "invalid_request_error"},
                       {"param", "x"},
                       {"code", nullptr}}}}));
  EXPECT_EQ(json::parse(dump(error_json(ApiError(503, "busy"))))["error"]["type"], "server_error");
  EXPECT_EQ(sse_event(json{{"a", 1}}), "data: {\"a\":1}\n\n");
  EXPECT_EQ(kSseDone, "data: [DONE]\n\n");
  // Text with newlines stays on one data line (JSON escapes them).
  EXPECT_EQ(sse_event(json{{"t", "a\nb"}}), "data: {\"t\":\"a\\nb\"}\n\n");
  EXPECT_TRUE(make_reply_id(Endpoint::Completions, 1).starts_with("cmpl-"));
  EXPECT_TRUE(make_reply_id(Endpoint::ChatCompletions, 1).starts_with("chatcmpl-"));
  EXPECT_NE(make_reply_id(Endpoint::Completions, 1), make_reply_id(Endpoint::Completions, 2));
}

}  // namespace
}  // namespace reprise::serve

namespace reprise::serve {
namespace {

TEST(SlotPool, AdmitsSlotsPlusQueueAndServesInOrder) {
  SessionOptions so;
  so.n_threads = 1;
  so.n_ctx = 16;
  SlotPool pool(model(), LayerPath::identity(5), /*n_slots=*/1, /*max_waiting=*/2, so);
  auto a = pool.reserve();
  auto b = pool.reserve();
  auto c = pool.reserve();
  ASSERT_TRUE(a && b && c);
  EXPECT_EQ(pool.reserve(), nullptr);  // 1 running + 2 waiting
  EXPECT_EQ(pool.stats().waiting, 3);

  auto lease_a = a->acquire({});
  ASSERT_TRUE(lease_a);
  EXPECT_EQ(pool.stats().busy, 1);
  EXPECT_EQ(pool.stats().waiting, 2);

  // A waiter that gives up frees its place in line.
  int polls = 0;
  EXPECT_EQ(c->acquire([&] { return ++polls < 3; }, std::chrono::milliseconds(1)), nullptr);
  EXPECT_EQ(pool.stats().waiting, 1);
  auto d = pool.reserve();
  ASSERT_TRUE(d);

  // b waits for a's slot; it gets it once a is done.
  std::unique_ptr<SlotPool::Lease> lease_b;
  std::thread waiter([&] { lease_b = b->acquire({}, std::chrono::milliseconds(1)); });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_FALSE(lease_b);
  lease_a.reset();
  waiter.join();
  ASSERT_TRUE(lease_b);
  EXPECT_EQ(lease_b->session().n_ctx(), 16);
  lease_b.reset();
  d.reset();  // never used: its place is returned too
  EXPECT_EQ(pool.stats().busy, 0);
  EXPECT_EQ(pool.stats().waiting, 0);
  EXPECT_TRUE(pool.reserve());
}

}  // namespace
}  // namespace reprise::serve
