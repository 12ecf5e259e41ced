// `reprise serve` on SmolLM2 as lm-evaluation-harness's local-completions model uses it: a
// log-likelihood request is the context and continuation as token ids with echo, max_tokens 1
// and logprobs 1, and lm-eval sums token_logprobs[ctxlen:-1], counting on the reply listing the
// prompt's tokens and then exactly one sampled token. When that token ends generation (SmolLM2
// often answers with <|im_end|> at once), it must still be listed. ctest label "real".
#include <gtest/gtest.h>
#include <httplib.h>

#include <cmath>
#include <nlohmann/json.hpp>

#include "engine/session.h"
#include "model/model.h"
#include "model/tokenizer.h"
#include "serve/server.h"
#include "smollm2_model.h"
#include "support/test_support.h"

namespace reprise {
namespace {

using nlohmann::json;

std::filesystem::path model_path() {
  return test::smollm2_path();
}

TEST(SmolLM2Serve, EchoListsTheEndOfGenerationTokenAfterThePrompt) {
  REQUIRE_SMOLLM2();
  const auto model = Model::load(model_path());
  const Tokenizer& tok = *model->tokenizer();
  // ARC-Easy test item 24 as lm-eval renders it, with its first choice: greedy decoding answers
  // with the end-of-turn token straight away.
  const std::string context =
      "Question: Jessica wants to see cells in an oak tree leaf. Which tool is best for Jessica "
      "to use to see the cells?\nAnswer:";
  const auto ctx = tok.encode(context, {.add_bos = false, .parse_special = false});
  auto ids = tok.encode(context + " binoculars", {.add_bos = false, .parse_special = false});
  ASSERT_GT(ids.size(), ctx.size());

  // The reference: one prefill of the whole sequence, log-softmax in double.
  SessionOptions so;
  so.n_threads = 1;
  so.n_ctx = 256;
  Session session(*model, LayerPath::identity(model->hparams().n_layer), so);
  const std::span<const float> all = session.prefill(ids, /*all_logits=*/true);
  const size_t V = static_cast<size_t>(model->hparams().n_vocab);
  double want = 0;
  for (size_t i = ctx.size(); i < ids.size(); ++i) {
    const float* row = all.data() + (i - 1) * V;
    double mx = row[0], sum = 0;
    for (size_t v = 0; v < V; ++v) mx = std::max(mx, static_cast<double>(row[v]));
    for (size_t v = 0; v < V; ++v) sum += std::exp(row[v] - mx);
    want += row[ids[i]] - mx - std::log(sum);
  }

  serve::ServerOptions o;
  o.host = "127.0.0.1";
  o.port = 0;
  o.session.n_threads = 1;
  o.session.n_ctx = 256;
  serve::Server server(*model, o);
  const int port = server.start();
  httplib::Client c("127.0.0.1", port);
  c.set_read_timeout(60);
  const json body = {
      {"prompt", ids}, {"max_tokens", 1}, {"echo", true}, {"logprobs", 1}, {"temperature", 0}};
  auto res = c.Post("/v1/completions", body.dump(), "application/json");
  server.stop();
  ASSERT_TRUE(res);
  ASSERT_EQ(res->status, 200) << res->body;
  const json r = json::parse(res->body);
  const json& choice = r["choices"][0];
  ASSERT_EQ(choice["finish_reason"], "stop") << "greedy no longer ends at once: pick another item";
  EXPECT_EQ(r["usage"]["completion_tokens"], 0);
  const json& lps = choice["logprobs"]["token_logprobs"];
  ASSERT_EQ(lps.size(), ids.size() + 1) << "the prompt's tokens, then the one sampled token";
  EXPECT_EQ(choice["logprobs"]["tokens"].back(), tok.token_to_piece(tok.vocab().eot));
  double got = 0;  // lm-eval's sum(token_logprobs[ctxlen:-1])
  for (size_t i = ctx.size(); i + 1 < lps.size(); ++i) got += lps[i].get<double>();
  EXPECT_NEAR(got, want, 1e-4);
  EXPECT_LE(lps.back().get<double>(), 0.0);
}

}  // namespace
}  // namespace reprise
