// `reprise serve` over real HTTP on loopback: completions and chat, streamed and not, per-request
// layer paths against `reprise run`, concurrent clients, every error status, disconnects, and a
// bounded barrage of malformed requests after which the server still answers.
//
// Every server listens on 127.0.0.1 with a port the kernel picks; every loop is bounded in
// count, and every client has timeouts.
#include <arpa/inet.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <nlohmann/json.hpp>
#include <random>
#include <regex>
#include <sstream>
#include <thread>

#include "serve/server.h"
#include "support/route_fixture.h"
#include "support/test_support.h"
#include "util/error.h"

namespace reprise::serve {
namespace {

using nlohmann::json;
using namespace std::chrono_literals;

const Model& model() {
  static const std::unique_ptr<Model> m = Model::load(test::default_model());
  return *m;
}

ServerOptions test_options() {
  ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.session.n_threads = 1;
  o.session.n_ctx = 512;
  o.named_paths = {"deep=repeat:1:4"};
  o.max_path_len = 64;
  o.heartbeat = 50ms;
  return o;
}

struct TestServer {
  explicit TestServer(ServerOptions o = test_options())
      : server(std::make_unique<Server>(model(), o)), port(server->start()) {}
  ~TestServer() { server->stop(); }

  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port);
    c.set_connection_timeout(5);
    c.set_read_timeout(20);
    c.set_write_timeout(5);
    return c;
  }

  std::unique_ptr<Server> server;
  int port;
};

struct Reply {
  int status = 0;
  std::string body;
  json j;  // parsed body when it is JSON
};

Reply post(const TestServer& s, const std::string& path, const std::string& body,
           const httplib::Headers& headers = {}) {
  auto c = s.client();
  auto r = c.Post(path.c_str(), headers, body, "application/json");
  Reply out;
  if (!r) return out;
  out.status = r->status;
  out.body = r->body;
  out.j = json::parse(r->body, nullptr, false);
  return out;
}

Reply get(const TestServer& s, const std::string& path, const httplib::Headers& headers = {}) {
  auto c = s.client();
  auto r = c.Get(path.c_str(), headers);
  Reply out;
  if (!r) return out;
  out.status = r->status;
  out.body = r->body;
  out.j = json::parse(r->body, nullptr, false);
  return out;
}

// POSTs and hands the body to on_data as it arrives; on_data returns false to hang up.
httplib::Error post_streaming(const TestServer& s, const std::string& path, const std::string& body,
                              const std::function<bool(std::string_view)>& on_data,
                              int* status = nullptr) {
  auto c = s.client();
  httplib::Request req;
  req.method = "POST";
  req.path = path;
  req.body = body;
  req.set_header("Content-Type", "application/json");
  req.content_receiver = [&](const char* data, size_t n, uint64_t, uint64_t) {
    return on_data(std::string_view(data, n));
  };
  httplib::Response res;
  httplib::Error err = httplib::Error::Success;
  c.send(req, res, err);
  if (status) *status = res.status;
  return err;
}

// The JSON payloads of an SSE body, in order; "[DONE]" comes as the string "[DONE]".
std::vector<json> sse_payloads(const std::string& body) {
  std::vector<json> out;
  size_t pos = 0;
  while (pos < body.size()) {
    size_t end = body.find("\n\n", pos);
    if (end == std::string::npos) end = body.size();
    const std::string event = body.substr(pos, end - pos);
    pos = end + 2;
    if (!event.starts_with("data: ")) continue;  // comments (": keep-alive")
    const std::string data = event.substr(6);
    out.push_back(data == "[DONE]" ? json("[DONE]") : json::parse(data, nullptr, false));
  }
  return out;
}

std::string cli_continuation(const std::string& path, const std::string& prompt, int n) {
  auto r =
      test::run_cli("run -m '" + test::default_model().string() + "' -t 1 -n " + std::to_string(n) +
                    " -p '" + prompt + "'" + (path.empty() ? "" : " --path " + path));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  std::string cont = r.out.substr(std::min(prompt.size(), r.out.size()));
  if (!cont.empty() && cont.back() == '\n') cont.pop_back();
  return cont;
}

std::string completion_body(const std::string& prompt, int max_tokens, const json& extra = {}) {
  json b = {
      {"model", "stories260K"}, {"prompt", prompt}, {"max_tokens", max_tokens}, {"temperature", 0}};
  if (extra.is_object()) b.update(extra);
  return b.dump();
}

void expect_error(const Reply& r, int status, const std::string& needle = "") {
  EXPECT_EQ(r.status, status) << r.body;
  ASSERT_TRUE(r.j.is_object()) << r.body;
  ASSERT_TRUE(r.j.contains("error")) << r.body;
  const json& e = r.j["error"];
  EXPECT_TRUE(e["message"].is_string());
  EXPECT_TRUE(e["type"].is_string());
  EXPECT_TRUE(e.contains("param"));
  EXPECT_TRUE(e.contains("code"));
  if (!needle.empty()) {
    EXPECT_NE(e["message"].get<std::string>().find(needle), std::string::npos) << r.body;
  }
}

bool wait_for(const std::function<bool()>& cond, std::chrono::milliseconds limit = 10s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (std::chrono::steady_clock::now() < end) {
    if (cond()) return true;
    std::this_thread::sleep_for(10ms);
  }
  return cond();
}

// Connects, sends `bytes`, optionally reads (the start of) the reply, waits, and closes.
std::string send_raw(int port, const std::string& bytes, bool read_reply,
                     std::chrono::milliseconds linger = 0ms) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return "socket failed";
  timeval tv{2, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  std::string reply;
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
    (void)!::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (read_reply) {
      ::shutdown(fd, SHUT_WR);
      // Until the server closes (each recv waits at most 2 s; at most 16 of them).
      char buf[4096];
      for (int i = 0; i < 16; ++i) {
        const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
        if (n <= 0) break;
        reply.append(buf, static_cast<size_t>(n));
      }
    }
    std::this_thread::sleep_for(linger);
  } else {
    reply = "connect failed";
  }
  ::close(fd);
  return reply;
}

TEST(ServeHttp, HealthAndModels) {
  TestServer s;
  Reply h = get(s, "/health");
  EXPECT_EQ(h.status, 200);
  EXPECT_EQ(h.j["status"], "ok");
  Reply m = get(s, "/v1/models");
  ASSERT_EQ(m.status, 200);
  EXPECT_EQ(m.j["object"], "list");
  ASSERT_EQ(m.j["data"].size(), 2u);
  EXPECT_EQ(m.j["data"][0]["id"], "stories260K");
  EXPECT_EQ(m.j["data"][0]["object"], "model");
  EXPECT_EQ(m.j["data"][1]["id"], "stories260K:deep");
  EXPECT_EQ(m.j["data"][1]["layer_path"], "0..3,1..4");
  EXPECT_EQ(get(s, "/v1/models/stories260K:deep").j["id"], "stories260K:deep");
  expect_error(get(s, "/v1/models/nope"), 404);
}

TEST(ServeHttp, PerRequestPathEqualsRepriseRun) {
  TestServer s;
  const std::string prompt = "Once upon a time";
  const std::string expected_deep = cli_continuation("repeat:1:4", prompt, 40);
  const std::string expected_plain = cli_continuation("", prompt, 40);
  ASSERT_NE(expected_deep, expected_plain);

  Reply r = post(s, "/v1/completions", completion_body(prompt, 40, {{"layer_path", "repeat:1:4"}}));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j["object"], "text_completion");
  EXPECT_EQ(r.j["choices"][0]["text"], expected_deep);
  EXPECT_EQ(r.j["layer_path"], "0..3,1..4");
  EXPECT_TRUE(r.j["id"].get<std::string>().starts_with("cmpl-"));
  EXPECT_EQ(r.j["usage"]["prompt_tokens"], 5);
  EXPECT_EQ(r.j["usage"]["total_tokens"].get<int>(),
            5 + r.j["usage"]["completion_tokens"].get<int>());

  // The named path is the same path; the plain one follows on the same slot.
  r = post(
      s, "/v1/completions",
      json{
          {"model", "stories260K:deep"}, {"prompt", prompt}, {"max_tokens", 40}, {"temperature", 0}}
          .dump());
  EXPECT_EQ(r.j["choices"][0]["text"], expected_deep);
  EXPECT_EQ(r.j["model"], "stories260K:deep");
  r = post(s, "/v1/completions", completion_body(prompt, 40));
  EXPECT_EQ(r.j["choices"][0]["text"], expected_plain);
  EXPECT_EQ(r.j["layer_path"], "0..4");

  // A prompt of token ids gives the same as its text.
  const auto ids = model().tokenizer()->encode(prompt, EncodeOptions{});
  r = post(
      s, "/v1/completions",
      json{{"prompt", ids}, {"max_tokens", 40}, {"temperature", 0}, {"layer_path", "0..3,1..4"}}
          .dump());
  EXPECT_EQ(r.j["choices"][0]["text"], expected_deep);
}

TEST(ServeHttp, StreamedCompletionMatchesTheWholeOne) {
  TestServer s;
  const std::string body = completion_body("Once upon a time", 30, {{"stop", "Lily"}});
  Reply whole = post(s, "/v1/completions", body);
  ASSERT_EQ(whole.status, 200);
  EXPECT_EQ(whole.j["choices"][0]["finish_reason"], "stop");
  const std::string text = whole.j["choices"][0]["text"];
  EXPECT_EQ(text.find("Lily"), std::string::npos);

  Reply streamed = post(
      s, "/v1/completions",
      completion_body(
          "Once upon a time", 30,
          {{"stop", "Lily"}, {"stream", true}, {"stream_options", {{"include_usage", true}}}}));
  ASSERT_EQ(streamed.status, 200);
  const auto events = sse_payloads(streamed.body);
  ASSERT_GE(events.size(), 4u);
  EXPECT_EQ(events.back(), "[DONE]");
  std::string joined;
  for (size_t i = 0; i + 2 < events.size(); ++i) {
    const json& e = events[i];
    EXPECT_EQ(e["object"], "text_completion");
    EXPECT_EQ(e["id"], events[0]["id"]);
    joined += e["choices"][0]["text"].get<std::string>();
    const bool last = i + 3 == events.size();
    EXPECT_EQ(e["choices"][0]["finish_reason"], last ? json("stop") : json(nullptr));
  }
  EXPECT_EQ(joined, text);
  const json& usage = events[events.size() - 2];
  EXPECT_TRUE(usage["choices"].empty());
  EXPECT_EQ(usage["usage"], whole.j["usage"]);
}

TEST(ServeHttp, ChatOnAModelWithoutTemplate) {
  TestServer s;
  const json msgs = json::array(
      {{{"role", "system"}, {"content", "Tell a story."}}, {{"role", "user"}, {"content", "Hi"}}});
  Reply whole = post(
      s, "/v1/chat/completions",
      json{{"model", "stories260K"}, {"messages", msgs}, {"max_tokens", 20}, {"temperature", 0}}
          .dump());
  ASSERT_EQ(whole.status, 200) << whole.body;
  EXPECT_EQ(whole.j["object"], "chat.completion");
  EXPECT_TRUE(whole.j["id"].get<std::string>().starts_with("chatcmpl-"));
  EXPECT_EQ(whole.j["choices"][0]["message"]["role"], "assistant");
  const std::string content = whole.j["choices"][0]["message"]["content"];
  EXPECT_FALSE(content.empty());
  EXPECT_EQ(whole.j["usage"]["completion_tokens"], 20);

  Reply streamed = post(
      s, "/v1/chat/completions",
      json{{"messages", msgs}, {"max_tokens", 20}, {"temperature", 0}, {"stream", true}}.dump());
  const auto events = sse_payloads(streamed.body);
  ASSERT_GE(events.size(), 3u);
  EXPECT_EQ(events.front()["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(events.back(), "[DONE]");
  const json& fin = events[events.size() - 2];
  EXPECT_EQ(fin["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(fin["choices"][0]["delta"], json::object());
  std::string joined;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    EXPECT_EQ(events[i]["object"], "chat.completion.chunk");
    joined += events[i]["choices"][0]["delta"].value("content", "");
  }
  EXPECT_EQ(joined, content);
}

TEST(ServeHttp, Logprobs) {
  TestServer s;
  Reply c = post(s, "/v1/completions", completion_body("Once upon a time", 6, {{"logprobs", 3}}));
  ASSERT_EQ(c.status, 200);
  const json& lp = c.j["choices"][0]["logprobs"];
  ASSERT_EQ(lp["tokens"].size(), 6u);
  ASSERT_EQ(lp["token_logprobs"].size(), 6u);
  ASSERT_EQ(lp["top_logprobs"].size(), 6u);
  EXPECT_EQ(lp["top_logprobs"][0].size(), 3u);
  EXPECT_EQ(lp["text_offset"][0], std::string("Once upon a time").size());
  std::string joined;
  for (const auto& t : lp["tokens"]) joined += t.get<std::string>();
  EXPECT_EQ(joined, c.j["choices"][0]["text"]);

  Reply ch = post(s, "/v1/chat/completions",
                  json{{"messages", {{{"role", "user"}, {"content", "Hi"}}}},
                       {"max_tokens", 5},
                       {"temperature", 0},
                       {"logprobs", true},
                       {"top_logprobs", 2}}
                      .dump());
  ASSERT_EQ(ch.status, 200) << ch.body;
  const json& content = ch.j["choices"][0]["logprobs"]["content"];
  ASSERT_EQ(content.size(), 5u);
  for (const auto& t : content) {
    EXPECT_LE(t["logprob"].get<double>(), 0.0);
    EXPECT_TRUE(t["bytes"].is_array());
    EXPECT_EQ(t["top_logprobs"].size(), 2u);
  }
}

// Log-softmax of every row `reprise logits --all-positions` prints for `ids` on `path`, in
// double: row r gives the distribution of the token after ids[r].
std::vector<std::vector<double>> cli_log_softmax(const std::vector<int32_t>& ids,
                                                 const std::string& path) {
  std::string list;
  for (int32_t id : ids) {
    if (!list.empty()) list += ',';
    list += std::to_string(id);
  }
  const std::string path_arg = path.empty() ? std::string() : " --path " + path;
  auto r = test::run_cli("logits -m '" + test::default_model().string() + "' -t 1 --tokens " +
                         list + " --all-positions" + path_arg);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const json j = json::parse(r.out);
  std::vector<std::vector<double>> out;
  for (const auto& row : j["logits"]) {
    std::vector<double> v = row.get<std::vector<double>>();
    double mx = v[0];
    for (double x : v) mx = std::max(mx, x);
    double sum = 0;
    for (double x : v) sum += std::exp(x - mx);
    const double lse = mx + std::log(sum);
    for (double& x : v) x -= lse;
    out.push_back(std::move(v));
  }
  return out;
}

// lm-evaluation-harness's log-likelihood request: the prompt's own log-probabilities.
TEST(ServeHttp, EchoGivesThePromptsLogprobs) {
  TestServer s;
  const std::vector<int32_t> ids =
      model().tokenizer()->encode("Once upon a time there was a cat", EncodeOptions{});
  ASSERT_GE(ids.size(), 6u);
  for (const std::string path : {"", "repeat:1:4"}) {
    SCOPED_TRACE(path);
    const auto want = cli_log_softmax(ids, path);
    ASSERT_EQ(want.size(), ids.size());
    json body = {{"prompt", ids}, {"max_tokens", 0}, {"echo", true}, {"logprobs", 2}};
    if (!path.empty()) body["layer_path"] = path;
    Reply r = post(s, "/v1/completions", body.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    const json& choice = r.j["choices"][0];
    const json& lp = choice["logprobs"];
    ASSERT_EQ(lp["tokens"].size(), ids.size());
    ASSERT_EQ(lp["token_logprobs"].size(), ids.size());
    EXPECT_TRUE(lp["token_logprobs"][0].is_null());
    EXPECT_TRUE(lp["top_logprobs"][0].is_null());
    std::string text;
    for (size_t i = 0; i < ids.size(); ++i) {
      const std::string piece = model().tokenizer()->token_to_piece(ids[i]);
      EXPECT_EQ(lp["tokens"][i], piece);
      EXPECT_EQ(lp["text_offset"][i], text.size());
      text += piece;
      if (i == 0) continue;
      // Token i is scored by the row after token i-1.
      EXPECT_NEAR(lp["token_logprobs"][i].get<double>(), want[i - 1][ids[i]], 1e-5) << i;
      const json& top = lp["top_logprobs"][i];
      ASSERT_EQ(top.size(), 2u);
      std::vector<double> sorted = want[i - 1];
      std::sort(sorted.rbegin(), sorted.rend());
      double best = -1e30;
      for (const auto& [tok, v] : top.items()) best = std::max(best, v.get<double>());
      EXPECT_NEAR(best, sorted[0], 1e-5) << i;
    }
    EXPECT_EQ(choice["text"], text);
    EXPECT_EQ(choice["finish_reason"], "length");
    EXPECT_EQ(r.j["usage"]["prompt_tokens"], ids.size());
    EXPECT_EQ(r.j["usage"]["completion_tokens"], 0);
  }

  // lm-eval's exact request: echo with one generated token and logprobs 1; the block is the
  // prompt's tokens followed by the generated one, and the text is prompt + generation.
  Reply g = post(
      s, "/v1/completions",
      json{{"prompt", ids}, {"max_tokens", 1}, {"temperature", 0}, {"logprobs", 1}, {"echo", true}}
          .dump());
  ASSERT_EQ(g.status, 200) << g.body;
  const json& glp = g.j["choices"][0]["logprobs"];
  ASSERT_EQ(glp["token_logprobs"].size(), ids.size() + 1);
  const auto want = cli_log_softmax(ids, "");
  const auto& last = want.back();
  const size_t argmax = std::max_element(last.begin(), last.end()) - last.begin();
  EXPECT_EQ(glp["tokens"].back(), model().tokenizer()->token_to_piece(argmax));
  EXPECT_NEAR(glp["token_logprobs"].back().get<double>(), last[argmax], 1e-5);
  EXPECT_NEAR(glp["token_logprobs"][3].get<double>(), want[2][ids[3]], 1e-5);
  std::string prompt_text;
  for (int32_t id : ids) prompt_text += model().tokenizer()->token_to_piece(id);
  EXPECT_EQ(glp["text_offset"].back(), prompt_text.size());
  EXPECT_EQ(g.j["choices"][0]["text"], prompt_text + model().tokenizer()->token_to_piece(argmax));

  // Several prompts (a token list and a text): one choice each, in order, each scored alone.
  Reply b =
      post(s, "/v1/completions",
           json{{"prompt", json::array({json(std::vector<int32_t>(ids.begin(), ids.begin() + 4)),
                                        json("Once upon a time")})},
                {"max_tokens", 0},
                {"echo", true},
                {"logprobs", 0}}
               .dump());
  ASSERT_EQ(b.status, 200) << b.body;
  ASSERT_EQ(b.j["choices"].size(), 2u);
  EXPECT_EQ(b.j["choices"][0]["index"], 0);
  EXPECT_EQ(b.j["choices"][1]["index"], 1);
  const json& b0 = b.j["choices"][0]["logprobs"];
  ASSERT_EQ(b0["token_logprobs"].size(), 4u);
  EXPECT_NEAR(b0["token_logprobs"][3].get<double>(), want[2][ids[3]], 1e-5);
  EXPECT_EQ(b0["top_logprobs"][3], json::object());
  EXPECT_EQ(b.j["choices"][1]["text"], "Once upon a time");
  const auto text_ids = model().tokenizer()->encode("Once upon a time", EncodeOptions{});
  const json& b1 = b.j["choices"][1]["logprobs"];
  ASSERT_EQ(b1["token_logprobs"].size(), text_ids.size());
  const auto want_text = cli_log_softmax(text_ids, "");
  for (size_t i = 1; i < text_ids.size(); ++i)
    EXPECT_NEAR(b1["token_logprobs"][i].get<double>(), want_text[i - 1][text_ids[i]], 1e-5);
  EXPECT_EQ(b.j["usage"]["prompt_tokens"], 4 + text_ids.size());
}

// With --bos-token-prompts a token prompt without BOS runs after it (as `reprise eval` scores),
// and the echo shows only the tokens sent: the first is scored too.
TEST(ServeHttp, BosTokenPromptsScoreTheFirstTokenAfterBos) {
  ServerOptions o = test_options();
  o.bos_token_prompts = true;
  TestServer s(o);
  const std::vector<int32_t> with_bos =
      model().tokenizer()->encode("Once upon a time", EncodeOptions{});
  ASSERT_EQ(with_bos[0], model().tokenizer()->vocab().bos);
  const std::vector<int32_t> ids(with_bos.begin() + 1, with_bos.end());
  const auto want = cli_log_softmax(with_bos, "");
  for (const json& prompt : {json(ids), json(with_bos)}) {
    Reply r =
        post(s, "/v1/completions",
             json{{"prompt", prompt}, {"max_tokens", 0}, {"echo", true}, {"logprobs", 1}}.dump());
    ASSERT_EQ(r.status, 200) << r.body;
    const json& lp = r.j["choices"][0]["logprobs"];
    ASSERT_EQ(lp["token_logprobs"].size(), prompt.size());
    const size_t shift = with_bos.size() - prompt.size();  // 1 when the server added BOS
    for (size_t i = 0; i < prompt.size(); ++i) {
      const size_t k = i + shift;  // position in with_bos
      if (k == 0) {
        EXPECT_TRUE(lp["token_logprobs"][i].is_null());
        continue;
      }
      EXPECT_NEAR(lp["token_logprobs"][i].get<double>(), want[k - 1][with_bos[k]], 1e-5) << i;
    }
    EXPECT_EQ(r.j["usage"]["prompt_tokens"], with_bos.size());
  }
}

// vLLM's tokenizer endpoints, as lm-eval's remote tokenizer calls them.
TEST(ServeHttp, TokenizerEndpoints) {
  TestServer s;
  const Tokenizer& tok = *model().tokenizer();
  Reply t = post(s, "/tokenize", R"({"prompt":"Once upon a time","add_special_tokens":false})");
  ASSERT_EQ(t.status, 200) << t.body;
  EncodeOptions plain;
  plain.add_bos = false;
  EXPECT_EQ(t.j["tokens"].get<std::vector<int32_t>>(), tok.encode("Once upon a time", plain));
  EXPECT_EQ(t.j["count"], tok.encode("Once upon a time", plain).size());
  t = post(s, "/tokenize", R"({"prompt":"Once upon a time"})");
  EXPECT_EQ(t.j["tokens"].get<std::vector<int32_t>>(),
            tok.encode("Once upon a time", EncodeOptions{}));
  // Special-token texts become their tokens, as in Hugging Face tokenizers.
  t = post(s, "/tokenize", R"({"prompt":"</s>","add_special_tokens":false})");
  EXPECT_EQ(t.j["tokens"], json::array({tok.vocab().eos}));
  Reply d = post(s, "/detokenize", json{{"tokens", tok.encode("Once upon a time", plain)}}.dump());
  ASSERT_EQ(d.status, 200) << d.body;
  EXPECT_EQ(d.j["prompt"], "Once upon a time");
  Reply info = get(s, "/tokenizer_info");
  ASSERT_EQ(info.status, 200);
  EXPECT_EQ(info.j["eos_token"], "</s>");
  EXPECT_EQ(info.j["bos_token"], "<s>");
  Reply bad = post(s, "/tokenize", R"({"prompt":5})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.j["error"]["param"], "prompt");
  bad = post(s, "/detokenize", R"({"tokens":[1,999999]})");
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(bad.j["error"]["message"], "'tokens[1]' must be a token id below 512");
}

TEST(ServeHttp, ConcurrentClientsGetIndependentResults) {
  ServerOptions o = test_options();
  o.parallel = 2;
  TestServer s(o);
  struct Case {
    std::string body;
    std::string expected;
  };
  const std::vector<std::string> paths = {"", "repeat:1:4", "skip:2:3", "0,1,2,2,2,3,4"};
  const std::vector<std::string> prompts = {"Once upon a time", "The little dog", "Tom and Sue"};
  std::vector<Case> cases;
  for (size_t i = 0; i < 8; ++i) {
    json extra = {{"layer_path", paths[i % paths.size()]}};
    if (i % 3 == 2) extra.update({{"temperature", 0.8}, {"seed", 1000 + i}});
    cases.push_back({completion_body(prompts[i % prompts.size()], 24, extra), ""});
  }
  // One by one first, for the expected answers.
  for (Case& c : cases) {
    Reply r = post(s, "/v1/completions", c.body);
    ASSERT_EQ(r.status, 200) << r.body;
    c.expected = r.j["choices"][0]["text"];
  }
  // Then all at once, twice over, from 8 threads.
  std::vector<std::string> got(cases.size() * 2);
  std::vector<std::thread> threads;
  for (size_t t = 0; t < got.size(); ++t)
    threads.emplace_back([&, t] {
      Reply r = post(s, "/v1/completions", cases[t % cases.size()].body);
      got[t] = r.status == 200 ? r.j["choices"][0]["text"].get<std::string>()
                               : "HTTP " + std::to_string(r.status);
    });
  for (auto& th : threads) th.join();
  for (size_t t = 0; t < got.size(); ++t)
    EXPECT_EQ(got[t], cases[t % cases.size()].expected) << "request " << t;
}

TEST(ServeHttp, ErrorStatuses) {
  TestServer s;
  expect_error(post(s, "/v1/completions", "{\"prompt\": "), 400, "not valid JSON");
  Reply r = post(s, "/v1/completions", R"({"prompt":"x","temperature":"warm"})");
  expect_error(r, 400, "temperature");
  EXPECT_EQ(r.j["error"]["param"], "temperature");
  r = post(s, "/v1/completions", R"({"prompt":"x","layer_path":"repeat:3:2"})");
  expect_error(r, 400, "layer path 'repeat:3:2'");
  EXPECT_EQ(r.j["error"]["param"], "layer_path");
  r = post(s, "/v1/completions", R"({"model":"gpt-4o","prompt":"x"})");
  expect_error(r, 404, "gpt-4o");
  EXPECT_EQ(r.j["error"]["code"], "model_not_found");
  expect_error(get(s, "/v1/unknown"), 404);
  expect_error(post(s, "/v1/chat/completions", R"({"messages":"hi"})"), 400, "messages");
}

TEST(ServeHttp, ApiKey) {
  ServerOptions o = test_options();
  o.api_key = "sekrit";
  TestServer s(o);
  const std::string body = completion_body("Hi", 2);
  Reply r = post(s, "/v1/completions", body);
  expect_error(r, 401);
  EXPECT_EQ(r.j["error"]["code"], "invalid_api_key");
  expect_error(post(s, "/v1/completions", body, {{"Authorization", "Bearer wrong"}}), 401);
  expect_error(post(s, "/v1/completions", body, {{"Authorization", "sekrit"}}), 401);
  expect_error(get(s, "/v1/models"), 401);
  EXPECT_EQ(post(s, "/v1/completions", body, {{"Authorization", "Bearer sekrit"}}).status, 200);
  // The scheme is case-insensitive (RFC 9110); the key is not.
  EXPECT_EQ(post(s, "/v1/completions", body, {{"Authorization", "bearer sekrit"}}).status, 200);
  EXPECT_EQ(post(s, "/v1/completions", body, {{"Authorization", "BEARER sekrit"}}).status, 200);
  expect_error(post(s, "/v1/completions", body, {{"Authorization", "Bearer SEKRIT"}}), 401);
  EXPECT_EQ(get(s, "/v1/models", {{"Authorization", "Bearer sekrit"}}).status, 200);
  EXPECT_EQ(get(s, "/health").status, 200);  // probes need no key
}

TEST(ServeHttp, BodyTooLarge) {
  ServerOptions o = test_options();
  o.max_body_bytes = 4096;
  TestServer s(o);
  const std::string big = completion_body(std::string(8000, 'a'), 2);
  Reply r = post(s, "/v1/completions", big);
  expect_error(r, 413, "4096");
  // A chunked upload has no Content-Length to check up front; it is cut off while read.
  std::string chunked =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";
  for (int i = 0; i < 10; ++i) chunked += "3e8\r\n" + std::string(1000, ' ') + "\r\n";
  chunked += "0\r\n\r\n";
  const std::string raw = send_raw(s.port, chunked, /*read_reply=*/true);
  EXPECT_TRUE(raw.starts_with("HTTP/1.1 413")) << raw;
  EXPECT_NE(raw.find("request_too_large"), std::string::npos) << raw;
  EXPECT_EQ(post(s, "/v1/completions", completion_body("Hi", 2)).status, 200);
}

// A request that keeps its slot busy until the client hangs up.
std::string endless_body(bool stream) {
  return json{{"prompt", "Once upon a time"},
              {"max_tokens", 100000},
              {"ignore_eos", true},
              {"layer_path", "repeat:0:5:8"},
              {"stream", stream}}
      .dump();
}

ServerOptions long_context_options() {
  ServerOptions o = test_options();
  o.session.n_ctx = 4096;
  return o;
}

// Keeps one slot busy with an endless streamed completion on its own thread until hang_up()
// (or destruction), so tests can fill the server.
class BusySlot {
 public:
  explicit BusySlot(TestServer& s)
      : thread_([this, &s] {
          post_streaming(s, "/v1/completions", endless_body(true), [this](std::string_view) {
            ++chunks_;
            return !hang_up_.load();
          });
        }) {}
  ~BusySlot() { hang_up(); }
  // Whether the reply has started streaming (waits for it).
  bool streaming() {
    return wait_for([&] { return chunks_.load() > 0; });
  }
  void hang_up() {
    hang_up_ = true;
    if (thread_.joinable()) thread_.join();
  }

 private:
  std::atomic<bool> hang_up_{false};
  std::atomic<int> chunks_{0};
  std::thread thread_;
};

TEST(ServeHttp, QueueFullGives503) {
  ServerOptions o = long_context_options();
  o.parallel = 1;
  o.max_queue = 0;
  TestServer s(o);
  BusySlot busy(s);
  ASSERT_TRUE(busy.streaming());
  EXPECT_EQ(s.server->slot_stats().busy, 1);
  auto c = s.client();
  auto raw = c.Post("/v1/completions", completion_body("Hi", 2), "application/json");
  ASSERT_TRUE(raw);
  EXPECT_EQ(raw->get_header_value("Retry-After"), "1");
  Reply r{raw->status, raw->body, json::parse(raw->body, nullptr, false)};
  expect_error(r, 503);
  EXPECT_EQ(r.j["error"]["code"], "server_busy");
  busy.hang_up();
  ASSERT_TRUE(wait_for([&] { return s.server->slot_stats().busy == 0; }));
  EXPECT_EQ(post(s, "/v1/completions", completion_body("Hi", 2)).status, 200);
}

TEST(ServeHttp, RequestTimeLimitEndsTheReplyAsTimeout) {
  ServerOptions o = long_context_options();
  o.request_timeout = 300ms;
  TestServer s(o);
  const auto t0 = std::chrono::steady_clock::now();
  Reply r = post(s, "/v1/completions", endless_body(false));
  const auto took = std::chrono::steady_clock::now() - t0;
  ASSERT_EQ(r.status, 200) << r.body;
  // Not "length": the token budget was not what ended it.
  EXPECT_EQ(r.j["choices"][0]["finish_reason"], "timeout") << r.body;
  // How many tokens fit in 300 ms depends on the host's load (none on a saturated one); what must
  // hold is that the limit, not the context, ended the reply, and soon.
  const int n = r.j["usage"]["completion_tokens"].get<int>();
  EXPECT_LT(n, 4000) << "the context filled up before the time limit was reached";
  EXPECT_LT(took, 30s);
  EXPECT_EQ(s.server->timed_out_requests(), 1u);
  // A stream cut short by the limit ends like any other: a finish_reason, then [DONE].
  std::string body;
  post_streaming(s, "/v1/completions", endless_body(true), [&](std::string_view d) {
    body += d;
    return true;
  });
  const std::vector<json> events = sse_payloads(body);
  ASSERT_GE(events.size(), 2u) << body;
  EXPECT_EQ(events.back(), "[DONE]");
  EXPECT_EQ(events[events.size() - 2]["choices"][0]["finish_reason"], "timeout") << body;
  EXPECT_EQ(s.server->timed_out_requests(), 2u);
}

// A client that sends half a request and then nothing loses its connection after io_timeout
// (httplib's own default would keep the thread for 5 s).
TEST(ServeHttp, StalledUploadIsDisconnected) {
  ServerOptions o = test_options();
  o.io_timeout = 1s;
  TestServer s(o);
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  timeval tv{10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(s.port));
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  const std::string partial =
      "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"pro";
  ASSERT_EQ(::send(fd, partial.data(), partial.size(), MSG_NOSIGNAL),
            static_cast<ssize_t>(partial.size()));
  const auto t0 = std::chrono::steady_clock::now();
  // The server gives up on the body: it answers 400 or just closes, whichever httplib does.
  char buf[4096];
  const ssize_t n = ::recv(fd, buf, sizeof buf, 0);
  const auto waited = std::chrono::steady_clock::now() - t0;
  ::close(fd);
  if (n > 0) {
    EXPECT_TRUE(std::string_view(buf, n).starts_with("HTTP/1.1 400"));
  }
  EXPECT_GE(waited, 900ms);
  EXPECT_LT(waited, 3500ms) << "the stalled connection was not dropped after io_timeout";
  EXPECT_EQ(get(s, "/health").status, 200);
}

TEST(ServeHttp, WaitingRequestsAreServedInTurn) {
  ServerOptions o = long_context_options();
  o.parallel = 1;
  o.max_queue = 1;
  TestServer s(o);
  BusySlot busy(s);
  ASSERT_TRUE(busy.streaming());
  Reply queued;
  std::thread waiter([&] { queued = post(s, "/v1/completions", completion_body("Hi", 3)); });
  ASSERT_TRUE(wait_for([&] { return s.server->slot_stats().waiting == 1; }));
  expect_error(post(s, "/v1/completions", completion_body("Hi", 2)), 503);  // line is full
  busy.hang_up();
  waiter.join();
  EXPECT_EQ(queued.status, 200) << queued.body;
  EXPECT_EQ(queued.j["usage"]["completion_tokens"], 3);
}

TEST(ServeHttp, ClientHangingUpStopsGeneration) {
  TestServer s(long_context_options());
  // Streamed: hang up after a few chunks.
  int seen = 0;
  post_streaming(s, "/v1/completions", endless_body(true),
                 [&](std::string_view) { return ++seen < 5; });
  ASSERT_TRUE(wait_for([&] { return s.server->cancelled_requests() == 1; }));
  ASSERT_TRUE(wait_for([&] { return s.server->slot_stats().busy == 0; }));
  // Not streamed: the client sends its request and goes away; heartbeats reveal the closed
  // connection.
  const json request = {{"messages", {{{"role", "user"}, {"content", "Hi"}}}},
                        {"max_tokens", 100000},
                        {"ignore_eos", true},
                        {"layer_path", "repeat:0:5:8"}};
  const std::string body = request.dump();
  // The client accepts compression: a compressed reply would hold the heartbeats back, so the
  // server must not compress it.
  const std::string head =
      "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Accept-Encoding: gzip, deflate, br\r\nContent-Length: ";
  send_raw(s.port, head + std::to_string(body.size()) + "\r\n\r\n" + body,
           /*read_reply=*/false, 300ms);
  ASSERT_TRUE(wait_for([&] { return s.server->cancelled_requests() == 2; }));
  ASSERT_TRUE(wait_for([&] { return s.server->slot_stats().busy == 0; }));
  EXPECT_EQ(get(s, "/health").j["slots_busy"], 0);
}

// Bodies that are broken in every way a client (or an attacker) might manage.
std::vector<std::string> malformed_bodies() {
  std::vector<std::string> out;
  const std::string valid =
      R"({"model":"stories260K","prompt":"Once upon a time","max_tokens":2,"temperature":0,)"
      R"("stop":["x"],"layer_path":"repeat:1:4","logprobs":1})";
  // Every truncation of a valid body.
  for (size_t n = 0; n < valid.size(); ++n) out.push_back(valid.substr(0, n));
  // Wrong types and absurd values for every field.
  const std::vector<std::string> values = {"null",
                                           "true",
                                           "-1",
                                           "0",
                                           "1e308",
                                           "-1e308",
                                           "1e999",
                                           "123456789012345678901234567890",
                                           "18446744073709551616",
                                           "3.5",
                                           "\"\"",
                                           "\"x\"",
                                           "[]",
                                           "{}",
                                           "[[[]]]",
                                           "\"\\ud800\"",
                                           "\"\\u0000\""};
  for (const char* field :
       {"model", "prompt", "max_tokens", "temperature", "top_p", "top_k", "stop", "seed",
        "logprobs", "stream", "layer_path", "n", "echo", "stream_options"})
    for (const std::string& v : values)
      out.push_back(std::string(R"({"prompt":"hi","max_tokens":2,")") + field + "\":" + v + "}");
  // Invalid UTF-8, stray bytes, deep nesting, odd layer paths.
  out.push_back("{\"prompt\":\"\xff\xfe\xfd\"}");
  out.push_back("{\"prompt\":\"\xc0\xaf\"}");
  out.push_back("{\"prompt\":\"\xed\xa0\x80\"}");
  out.push_back(std::string("{\"prompt\":\"a\0b\"}", 15));
  out.push_back("\xef\xbb\xbf{\"prompt\":\"hi\"}");
  out.push_back(std::string(10000, '[') + std::string(10000, ']'));
  out.push_back(std::string(5000, '{'));
  for (const char* p : {"", ",", "..", "0..", "-1", "99999999999", "repeat:", "repeat:1:4:999",
                        "skip:0:5", "0,,1", "a..b", "repeat:0:5:64", "0..4,0..4,0..4,0..4,0..4"})
    out.push_back(json{{"prompt", "hi"}, {"max_tokens", 2}, {"layer_path", p}}.dump());
  // Seeded random bytes.
  std::mt19937 rng(7);
  for (int i = 0; i < 40; ++i) {
    std::string junk(1 + rng() % 200, '\0');
    for (char& c : junk) c = static_cast<char>(rng());
    out.push_back(junk);
  }
  return out;
}

TEST(ServeHttp, MalformedBodiesNeverHurtTheServer) {
  TestServer s;
  const auto bodies = malformed_bodies();
  ASSERT_LT(bodies.size(), 1000u);
  const auto deadline = std::chrono::steady_clock::now() + 60s;
  int errors = 0;
  for (const std::string& body : bodies) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline);
    for (const char* path : {"/v1/completions", "/v1/chat/completions"}) {
      Reply r = post(s, path, body);
      ASSERT_TRUE(r.status == 200 || r.status == 400 || r.status == 404)
          << path << " " << r.status << " for " << body.substr(0, 80);
      // A body that happens to be valid may ask for a stream.
      ASSERT_TRUE(r.j.is_object() || (r.status == 200 && r.body.starts_with("data: "))) << r.body;
      if (r.status != 200) {
        ++errors;
        expect_error(r, r.status);
      }
    }
  }
  EXPECT_GT(errors, static_cast<int>(bodies.size()));
  EXPECT_EQ(get(s, "/health").status, 200);
}

// Raw bytes on a socket: not HTTP at all, or HTTP cut short.
TEST(ServeHttp, BrokenHttpNeverHurtsTheServer) {
  TestServer s;
  const std::vector<std::string> raw = {
      "GARBAGE\r\n\r\n",
      "POST /v1/completions HTTP/1.1\r\nContent-Length: 100\r\n\r\n{\"pro",
      "POST /v1/completions HTTP/1.1\r\nContent-Length: -5\r\n\r\n",
      "POST /v1/completions HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n",
      "POST /v1/completions HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nxx\r\n0\r\n\r\n",
      "GET /" + std::string(20000, 'a') + " HTTP/1.1\r\n\r\n",
      std::string("\0\0\0\xff\xfe", 5),
  };
  for (const std::string& bytes : raw) send_raw(s.port, bytes, /*read_reply=*/true);
  EXPECT_EQ(get(s, "/health").status, 200);
  EXPECT_EQ(post(s, "/v1/completions", completion_body("Hi", 2)).status, 200);
}

// httplib's default socket options include SO_REUSEPORT, with which a second server on the same
// port started silently and took a share of the connections.
TEST(ServeHttp, BusyPortIsRefused) {
  TestServer first;
  ServerOptions o = test_options();
  o.port = first.port;
  Server second(model(), o);
  try {
    second.bind();
    ADD_FAILURE() << "a second server bound port " << first.port;
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), fmt::format("port {} is already in use", first.port));
  }
  // The command refuses to start with one line naming the port.
  auto r =
      test::run_cli("serve " + test::default_model_arg() + " --port " + std::to_string(first.port));
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_CONTAINS(r.err,
                  fmt::format("127.0.0.1:{}: port {} is already in use", first.port, first.port));
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_EQ(get(first, "/health").status, 200);
}

// An empty path used to fail inside the slot, after a 200 status line had gone out.
TEST(ServeHttp, EmptyLayerPathIs400) {
  TestServer s;
  for (const char* spec : {"none", "skip:0:5"}) {
    Reply r = post(s, "/v1/completions", completion_body("Hi", 2, {{"layer_path", spec}}));
    expect_error(r, 400, "runs no layers");
    EXPECT_EQ(r.j["error"]["param"], "layer_path") << r.body;
  }
  ServerOptions o = test_options();
  o.named_paths = {"empty=none"};
  try {
    Server bad(model(), o);
    ADD_FAILURE() << "--named-path empty=none was accepted";
  } catch (const Error& e) {
    EXPECT_CONTAINS(e.what(), "--named-path empty: layer path 'none' runs no layers");
  }
}

// A known path asked with the wrong method is 405 with Allow, not "unknown endpoint".
TEST(ServeHttp, WrongMethodIs405) {
  TestServer s;
  auto c = s.client();
  auto r = c.Get("/v1/chat/completions");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->get_header_value("Allow"), "POST");
  Reply g{r->status, r->body, json::parse(r->body, nullptr, false)};
  expect_error(g, 405, "Method GET is not allowed on /v1/chat/completions; use POST");
  r = c.Post("/v1/models", "{}", "application/json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 405);
  EXPECT_EQ(r->get_header_value("Allow"), "GET");
  expect_error(get(s, "/v1/nothing"), 404, "Unknown endpoint");
}

// Every error reply is logged, with a UTC timestamp, whichever layer produced it.
TEST(ServeHttp, LogHasTimestampsAndErrors) {
  ServerOptions o = test_options();
  o.log_requests = true;
  o.api_key = "k";
  testing::internal::CaptureStderr();
  {
    TestServer s(o);
    const httplib::Headers key = {{"Authorization", "Bearer k"}};
    post(s, "/v1/completions", completion_body("Hi", 2), key);
    post(s, "/v1/completions", R"({"prompt":"x","temperature":"warm"})", key);
    post(s, "/v1/completions", completion_body("Hi", 2));
    get(s, "/v1/nothing", key);
  }
  const std::string log = testing::internal::GetCapturedStderr();
  std::istringstream lines(log);
  int n = 0;
  const std::regex stamp(R"(^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z .*)");
  for (std::string line; std::getline(lines, line); ++n)
    EXPECT_TRUE(std::regex_match(line, stamp)) << line;
  EXPECT_EQ(n, 4) << log;
  EXPECT_CONTAINS(log, "Z POST /v1/completions 200 model=stories260K");
  EXPECT_CONTAINS(log, "Z POST /v1/completions 400 'temperature' must be a number");
  EXPECT_CONTAINS(log, "Z POST /v1/completions 401 Missing API key");
  EXPECT_CONTAINS(log, "Z GET /v1/nothing 404 Unknown endpoint");
}

// --- serve --router: "layer_path": "auto" and model "<id>:auto" ---

const std::vector<std::string> kRouteKeys = {"baseline", "repeat:1:4"};
const std::vector<std::string> kRoutePaths = {"0..4", "0..3,1..4"};
constexpr int kRouteLayer = 3;  // repeat:1:4 follows the plain path through positions 0..3

// A router that sends prompt `a` to repeat:1:4 and prompt `b` to the plain path.
std::filesystem::path two_prompt_router(const std::string& a, const std::string& b) {
  const Tokenizer& tok = *model().tokenizer();
  return test::write_router(
      test::two_prompt_router(model(), kRouteLayer, kRouteKeys, kRoutePaths,
                              tok.encode(a, EncodeOptions{}), tok.encode(b, EncodeOptions{})),
      "two-prompt-router.json");
}

ServerOptions routed_options(const std::filesystem::path& router) {
  ServerOptions o = test_options();
  o.router_file = router.string();
  return o;
}

TEST(ServeRoute, EachPromptRunsThePathItsRouterPicks) {
  const std::string a = "Once upon a time", b = "The dog ran to the park";
  TestServer s(routed_options(two_prompt_router(a, b)));
  const std::string want_a = cli_continuation("repeat:1:4", a, 24);
  const std::string want_b = cli_continuation("", b, 24);
  ASSERT_NE(want_a, cli_continuation("", a, 24));

  Reply m = get(s, "/v1/models");
  ASSERT_EQ(m.j["data"].size(), 3u) << m.body;
  const json& entry = m.j["data"][2];
  EXPECT_EQ(entry["id"], "stories260K:auto");
  EXPECT_EQ(entry["layer_path"], "auto");
  EXPECT_EQ(entry["router"]["feature_layer"], kRouteLayer);
  EXPECT_EQ(entry["router"]["candidates"][1], (json{{"key", "repeat:1:4"}, {"path", "0..3,1..4"}}));
  EXPECT_EQ(get(s, "/v1/models/stories260K:auto").j["layer_path"], "auto");

  // By model name and by layer_path; each reply names the path that ran.
  Reply r = post(s, "/v1/completions", completion_body(a, 24, {{"model", "stories260K:auto"}}));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j["choices"][0]["text"], want_a);
  EXPECT_EQ(r.j["layer_path"], "0..3,1..4");
  EXPECT_EQ(r.j["route"]["candidate"], "repeat:1:4");
  EXPECT_EQ(r.j["route"]["feature_layer"], kRouteLayer);
  EXPECT_GT(r.j["route"]["probability"].get<double>(), 0.5);
  r = post(s, "/v1/completions", completion_body(b, 24, {{"layer_path", "auto"}}));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j["choices"][0]["text"], want_b);
  EXPECT_EQ(r.j["layer_path"], "0..4");
  EXPECT_EQ(r.j["route"]["candidate"], "baseline");
  // An explicit path on the routed model name is not routed.
  r = post(s, "/v1/completions",
           completion_body(b, 24, {{"model", "stories260K:auto"}, {"layer_path", "repeat:1:4"}}));
  EXPECT_EQ(r.j["choices"][0]["text"], cli_continuation("repeat:1:4", b, 24));
  EXPECT_FALSE(r.j.contains("route")) << r.body;

  // Several prompts: each routed on its own; the reply's path is "auto" when they differ.
  r = post(s, "/v1/completions",
           completion_body("", 24, {{"prompt", {a, b}}, {"layer_path", "auto"}}));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j["layer_path"], "auto");
  EXPECT_FALSE(r.j.contains("route"));
  EXPECT_EQ(r.j["choices"][0]["text"], want_a);
  EXPECT_EQ(r.j["choices"][0]["layer_path"], "0..3,1..4");
  EXPECT_EQ(r.j["choices"][1]["text"], want_b);
  EXPECT_EQ(r.j["choices"][1]["route"]["candidate"], "baseline");

  // A stream names the chosen path in every chunk.
  r = post(s, "/v1/completions",
           completion_body(a, 24, {{"layer_path", "auto"}, {"stream", true}}));
  const auto events = sse_payloads(r.body);
  ASSERT_GE(events.size(), 2u) << r.body;
  std::string joined;
  for (size_t i = 0; i + 1 < events.size(); ++i) {
    EXPECT_EQ(events[i]["layer_path"], "0..3,1..4");
    EXPECT_EQ(events[i]["route"]["candidate"], "repeat:1:4");
    joined += events[i]["choices"][0]["text"].get<std::string>();
  }
  EXPECT_EQ(joined, want_a);
}

// A routed prompt's scores are those of the chosen path, whatever the router read on the way:
// a router that always picks repeat:1:4 gives exactly `reprise logits --path repeat:1:4`.
TEST(ServeRoute, AlwaysPickingOnePathGivesThatPathsLogprobs) {
  const auto router = test::write_router(
      test::constant_router(model(), kRouteLayer, kRouteKeys, kRoutePaths, {-5, 5}),
      "always-deep-router.json");
  TestServer s(routed_options(router));
  const std::vector<int32_t> ids =
      model().tokenizer()->encode("Once upon a time there was a cat", EncodeOptions{});
  const auto want = cli_log_softmax(ids, "repeat:1:4");
  json body = {
      {"prompt", ids}, {"max_tokens", 0}, {"echo", true}, {"logprobs", 1}, {"layer_path", "auto"}};
  Reply r = post(s, "/v1/completions", body.dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j["layer_path"], "0..3,1..4");
  EXPECT_NEAR(r.j["route"]["probability"].get<double>(), 1 / (1 + std::exp(-10.0)), 1e-12);
  const json& lp = r.j["choices"][0]["logprobs"]["token_logprobs"];
  ASSERT_EQ(lp.size(), ids.size());
  for (size_t i = 1; i < ids.size(); ++i)
    EXPECT_NEAR(lp[i].get<double>(), want[i - 1][ids[i]], 1e-5) << i;
  // The chat endpoint is routed too; unrouted requests on the same slot run their own path.
  r = post(s, "/v1/chat/completions",
           json{{"messages", {{{"role", "user"}, {"content", "Hi"}}}},
                {"max_tokens", 4},
                {"layer_path", "auto"}}
               .dump());
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.j["layer_path"], "0..3,1..4");
  r = post(s, "/v1/completions", completion_body("Once upon a time", 24));
  EXPECT_EQ(r.j["layer_path"], "0..4");
  EXPECT_EQ(r.j["choices"][0]["text"], cli_continuation("", "Once upon a time", 24));
}

// The router `reprise route train` makes serves the same choice as `reprise run --path auto:`.
TEST(ServeRoute, TrainedRouterAgreesWithRoutedRun) {
  const auto& router = test::trained_router();
  TestServer s(routed_options(router));
  const std::string prompt = "Once upon a time";
  auto run = test::run_cli("run " + test::default_model_arg() + " -n 16 --temp 0 -p '" + prompt +
                           "' --path 'auto:" + router.string() + "'");
  ASSERT_EQ(run.exit_code, 0) << run.err;
  Reply r = post(s, "/v1/completions", completion_body(prompt, 16, {{"layer_path", "auto"}}));
  ASSERT_EQ(r.status, 200) << r.body;
  const std::string key = r.j["route"]["candidate"];
  EXPECT_CONTAINS(run.err, "route: " + key + " ");
  EXPECT_CONTAINS(run.err, "path: " + r.j["layer_path"].get<std::string>() + " ");
  EXPECT_EQ(prompt + r.j["choices"][0]["text"].get<std::string>() + "\n", run.out);
}

TEST(ServeRoute, AutoWithoutARouterIs400) {
  TestServer s;
  Reply r = post(s, "/v1/completions", completion_body("Hi", 2, {{"layer_path", "auto"}}));
  expect_error(r, 400, "layer path 'auto' needs a router: start the server with --router");
  EXPECT_EQ(r.j["error"]["param"], "layer_path");
  expect_error(
      post(s, "/v1/completions", completion_body("Hi", 2, {{"model", "stories260K:auto"}})), 404,
      "does not exist");
  EXPECT_EQ(get(s, "/v1/models").j["data"].size(), 2u);
}

// A bad router file stops the server before it listens, in one line naming the file.
TEST(ServeRoute, BadRouterFilesFailAtStartUp) {
  auto start_error = [](const std::filesystem::path& router) {
    try {
      Server bad(model(), routed_options(router));
      return std::string("no error");
    } catch (const Error& e) {
      return std::string(e.what());
    }
  };
  const auto corrupt = test::scratch("serve-corrupt-router.json");
  std::ofstream(corrupt) << "{\"format\": ";
  EXPECT_CONTAINS(start_error(corrupt), "--router " + corrupt.string() + ": not valid JSON");

  auto f = test::constant_router(model(), kRouteLayer, kRouteKeys, kRoutePaths, {0, 1});
  f.model_sha256 = std::string(64, '0');
  const auto other = test::write_router(f, "serve-other-model-router.json");
  EXPECT_CONTAINS(start_error(other),
                  "--router " + other.string() + ": router file was trained for another model");

  auto j =
      route::to_json(test::constant_router(model(), kRouteLayer, kRouteKeys, kRoutePaths, {0, 1}));
  j["classifier"].erase("bias");
  const auto missing = test::scratch("serve-missing-field-router.json");
  std::ofstream(missing) << j.dump();
  EXPECT_CONTAINS(start_error(missing),
                  "--router " + missing.string() + ": not a router file (no 'bias')");

  ServerOptions o = routed_options(other);
  o.named_paths = {"auto=repeat:1:4"};
  o.router_file.clear();
  EXPECT_THROW(Server(model(), o), Error);

  // The binary: one line on stderr, non-zero exit, nothing listening.
  for (const auto& bad : {corrupt, other, missing}) {
    auto r = test::run_cli("serve " + test::default_model_arg() + " --port 0 --router '" +
                           bad.string() + "'");
    EXPECT_NE(r.exit_code, 0);
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_CONTAINS(r.err, bad.string());
  }
  auto r = test::run_cli("serve " + test::default_model_arg() +
                         " --port 0 --path 'auto:" + other.string() + "'");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_CONTAINS(r.err, "use --router FILE");
}

}  // namespace
}  // namespace reprise::serve
