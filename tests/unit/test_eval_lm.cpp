// SessionLM on the bundled default model, checked against log-softmaxes computed directly from
// a fresh Session's logits, and against llama2.c's known greedy story.
#include <gtest/gtest.h>

#include <cmath>

#include "engine/prefix_cache.h"
#include "eval/session_lm.h"
#include "format/gguf.h"
#include "kernels/ops.h"
#include "model/tokenizer.h"
#include "support/test_support.h"
#include "util/error.h"

namespace reprise::eval {
namespace {

class SessionLMTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { model_ = Model::load(test::default_model()).release(); }
  static void TearDownTestSuite() { delete model_; }

  static SessionLMOptions options(int n_ctx = 256) {
    SessionLMOptions o;
    o.session.n_ctx = n_ctx;
    o.session.n_threads = 1;
    return o;
  }

  // log p(cont | ctx) from one prefill of ctx + cont in a fresh session.
  static double direct_loglik(const std::vector<int32_t>& ctx, const std::vector<int32_t>& cont,
                              const LayerPath& path) {
    SessionOptions so;
    so.n_ctx = 512;
    so.n_threads = 1;
    Session s(*model_, path, so);
    std::vector<int32_t> all = ctx;
    all.insert(all.end(), cont.begin(), cont.end());
    auto logits = s.prefill(all, true);
    const int V = model_->hparams().n_vocab;
    double sum = 0;
    for (size_t j = 0; j < cont.size(); ++j) {
      const float* row = logits.data() + (ctx.size() - 1 + j) * V;
      double z = 0, mx = row[0];
      for (int k = 0; k < V; ++k) mx = std::max<double>(mx, row[k]);
      for (int k = 0; k < V; ++k) z += std::exp(row[k] - mx);
      sum += row[cont[j]] - mx - std::log(z);
    }
    return sum;
  }

  static LayerPath plain() { return LayerPath::identity(5); }

  static Model* model_;
};

Model* SessionLMTest::model_ = nullptr;

TEST_F(SessionLMTest, RequestTokenizerSplitsAtTheBoundary) {
  RequestTokenizer rt(*model_->tokenizer());
  // stories260K tokenizes "Answer: 5" as ... ':' (467), ' ' (410), '5' (480), after BOS (1).
  auto p = rt.pair("Answer:", " 5");
  ASSERT_FALSE(p.context.empty());
  EXPECT_EQ(p.context.front(), 1);
  EXPECT_EQ(p.context.back(), 467);
  EXPECT_EQ(p.continuation, (std::vector<int32_t>{410, 480}));
  // Trailing whitespace of the context moves to the continuation.
  auto q = rt.pair("Answer: ", "5");
  EXPECT_EQ(q.context, p.context);
  EXPECT_EQ(q.continuation, p.continuation);
  EXPECT_THROW(rt.pair("Answer:", ""), Error);

  // The digits' own tokens, after the shared space.
  std::vector<std::string> digits;
  for (int d = 0; d < 10; ++d) digits.push_back(std::string{' ', static_cast<char>('0' + d)});
  auto c = rt.candidates("The result is", digits);
  EXPECT_EQ(c.context.back(), 410);
  EXPECT_EQ(c.tokens[0], 477);
  EXPECT_EQ(c.tokens[1], 475);
  EXPECT_EQ(c.tokens[5], 480);
  EXPECT_EQ(c.tokens[7], 491);
  EXPECT_THROW(rt.candidates("x", std::vector<std::string>{" 1", " 1"}), Error);

  EXPECT_EQ(rt.passage("Hi").front(), 1);
}

TEST_F(SessionLMTest, LoglikelihoodMatchesDirectComputation) {
  SessionLM lm(*model_, plain(), options());
  RequestTokenizer rt(*model_->tokenizer());
  const std::string ctx = "Once upon a time, there was a little girl named Lily.";
  const std::vector<std::string> conts = {" She loved to play.", " He was sad.", " The end."};
  std::vector<LoglikelihoodRequest> reqs;
  for (const auto& c : conts) reqs.push_back({ctx, c, {}, {}});
  const auto got = lm.loglikelihood(reqs);
  ASSERT_EQ(got.size(), 3u);
  int64_t separate = 0;
  for (size_t k = 0; k < conts.size(); ++k) {
    const auto p = rt.pair(ctx, conts[k]);
    EXPECT_NEAR(got[k].logprob, direct_loglik(p.context, p.continuation, plain()), 1e-3) << k;
    EXPECT_EQ(got[k].n_tokens, static_cast<int>(p.continuation.size()));
    separate += static_cast<int64_t>(p.context.size() + p.continuation.size() - 1);
  }
  // The shared context ran once (plus one re-fed token per further continuation).
  EXPECT_LT(lm.tokens_computed(), separate);
  // llama2.c's greedy continuation of this prompt is " She loved to play outside in the park."
  EXPECT_TRUE(lm.loglikelihood(std::vector<LoglikelihoodRequest>{
      {ctx, " She loved to play outside in the park.", {}, {}}})[0]
                  .is_greedy);
  EXPECT_FALSE(got[1].is_greedy);
}

// A request scored after its context was reused (the continuation prefilled alone, 1..3
// tokens) equals, bit for bit, the same sum over one batch-invariant prefill of the whole
// sequence: what serve's echo gives lm-evaluation-harness (docs/python.md).
TEST_F(SessionLMTest, ScoresEqualOnePrefillOfTheWholeSequenceBitForBit) {
  SessionLM lm(*model_, plain(), options());
  RequestTokenizer rt(*model_->tokenizer());
  const std::string ctx = "Once upon a time, there was a little girl named Lily.";
  const std::vector<std::string> conts = {" She", " He ran", " The end.", " Lily smiled at Ben."};
  std::vector<LoglikelihoodRequest> reqs;
  for (const auto& c : conts) reqs.push_back({ctx, c, {}, {}});
  const auto got = lm.loglikelihood(reqs);
  const int V = model_->hparams().n_vocab;
  for (size_t k = 0; k < conts.size(); ++k) {
    const auto p = rt.pair(ctx, conts[k]);
    std::vector<int32_t> fed = p.context;
    fed.insert(fed.end(), p.continuation.begin(), p.continuation.end() - 1);
    Session s(*model_, plain(), options().session);
    s.set_batch_invariant(true);
    auto logits = s.prefill(fed, true);
    double want = 0;
    for (size_t j = 0; j < p.continuation.size(); ++j) {
      auto row = logits.subspan((p.context.size() - 1 + j) * V, V);
      want += row[p.continuation[j]] - kernels::log_sum_exp(row);
    }
    EXPECT_EQ(got[k].logprob, want) << conts[k];
  }
}

TEST_F(SessionLMTest, PrefixReuseDoesNotChangeResults) {
  const std::string ctx = "Lily and Ben went to the park. They saw a big dog.";
  std::vector<LoglikelihoodRequest> reqs = {
      {ctx, " The dog was happy.", {}, {}},
      {"Tom had a red ball.", " He liked it.", {}, {}},
      {ctx, " They ran away.", {}, {}},
  };
  SessionLM batched(*model_, plain(), options());
  const auto all = batched.loglikelihood(reqs);
  for (size_t k = 0; k < reqs.size(); ++k) {
    SessionLM fresh(*model_, plain(), options());
    const auto one = fresh.loglikelihood(std::span(&reqs[k], 1));
    EXPECT_NEAR(all[k].logprob, one[0].logprob, 1e-4) << k;
  }
}

// Prefix reuse serves every request kind from the baseline's cached run (a multiple-choice
// context and its choices, passages, generation, candidates) and changes no result by a bit;
// the baseline runs each token once however many paths reuse it.
TEST_F(SessionLMTest, PrefixCacheServesEveryRequestKindBitExactly) {
  const std::string q = "Question: Lily and Ben went to the park. What did they see?\nAnswer:";
  std::vector<Request> reqs = {
      LoglikelihoodRequest{q, " a big dog", {}, {}},
      LoglikelihoodRequest{q, " a red ball", {}, {}},
      LoglikelihoodRequest{q, " the sun", {}, {}},
      RollingRequest{"Once upon a time there was a little girl named Lily. She liked to play.", {}},
      GenerateRequest{"Once upon a time", {"\n"}, 12, {}},
      CandidateRequest{"Tom had 3 apples and", {" 1", " 2", " 3"}, {}, {}},
  };
  PrefixCache cache(*model_, plain(), options().session);
  int64_t saved = 0;
  for (const char* spec : {"0..4", "repeat:1:4", "repeat:2:5", "skip:3:5"}) {
    const LayerPath path = parse_layer_path(spec, 5);
    SessionLM fresh(*model_, path, options());
    SessionLM reused(*model_, path, options());
    reused.session().set_prefix_cache(&cache);
    const auto want = run_requests(fresh, reqs), got = run_requests(reused, reqs);
    ASSERT_EQ(got.size(), want.size());
    for (size_t k = 0; k < 3; ++k)
      EXPECT_EQ(std::get<LoglikelihoodResult>(got[k]).logprob,
                std::get<LoglikelihoodResult>(want[k]).logprob)
          << spec << " choice " << k;
    EXPECT_EQ(std::get<RollingResult>(got[3]).logprob, std::get<RollingResult>(want[3]).logprob)
        << spec;
    EXPECT_EQ(std::get<GenerateResult>(got[4]).text, std::get<GenerateResult>(want[4]).text)
        << spec;
    EXPECT_EQ(std::get<CandidateResult>(got[5]).probs, std::get<CandidateResult>(want[5]).probs)
        << spec;
    EXPECT_LT(reused.session().layer_evals(), fresh.session().layer_evals()) << spec;
    saved += fresh.session().layer_evals() - reused.session().layer_evals();
  }
  // Every token the four paths fed runs through the baseline once: its cost is one plain run.
  SessionLM plain_run(*model_, plain(), options());
  run_requests(plain_run, reqs);
  EXPECT_LE(cache.baseline_evals(), plain_run.session().layer_evals());
  EXPECT_GT(saved, cache.baseline_evals());
}

TEST_F(SessionLMTest, TokenFormRequests) {
  SessionLM lm(*model_, parse_layer_path("repeat:1:4", 5), options());
  const std::vector<int32_t> ctx = {1, 403, 407, 261}, cont = {378, 270};
  LoglikelihoodRequest r;
  r.context_tokens = ctx;
  r.continuation_tokens = cont;
  const auto got = lm.loglikelihood(std::span(&r, 1));
  EXPECT_NEAR(got[0].logprob, direct_loglik(ctx, cont, parse_layer_path("repeat:1:4", 5)), 1e-3);
  r.continuation_tokens = {9999};
  EXPECT_THROW(lm.loglikelihood(std::span(&r, 1)), Error);
}

TEST_F(SessionLMTest, LongContextIsCutFromTheLeftKeepingBos) {
  SessionLM lm(*model_, plain(), options(32));
  RequestTokenizer rt(*model_->tokenizer());
  const std::string ctx =
      "Once upon a time, there was a little girl named Lily. She loved to play outside.";
  const auto p = rt.pair(ctx, " The sun was warm.");
  ASSERT_GT(p.context.size() + p.continuation.size() - 1, 32u);
  const auto got =
      lm.loglikelihood(std::vector<LoglikelihoodRequest>{{ctx, " The sun was warm.", {}, {}}});
  EXPECT_EQ(lm.requests_truncated(), 1);
  // What remains: BOS, then the context's last tokens, so that context + continuation - 1 = 32.
  const size_t tail = 32 - 1 - (p.continuation.size() - 1);
  std::vector<int32_t> cut = {p.context.front()};
  cut.insert(cut.end(), p.context.end() - static_cast<std::ptrdiff_t>(tail), p.context.end());
  EXPECT_NEAR(got[0].logprob, direct_loglik(cut, p.continuation, plain()), 1e-3);
}

TEST_F(SessionLMTest, RollingScoresEveryTokenOnce) {
  const std::string text =
      "Once upon a time, there was a little girl named Lily. She loved to play outside in the "
      "park. One day, she saw a big, red ball. She wanted to play with it.";
  RequestTokenizer rt(*model_->tokenizer());
  const auto tokens = rt.passage(text);
  // Fits the context: the sum over all tokens after BOS, as one direct prefill.
  SessionLM big(*model_, plain(), options(256));
  const auto r = big.loglikelihood_rolling(std::vector<RollingRequest>{{text, {}}});
  EXPECT_EQ(r[0].n_tokens, static_cast<int>(tokens.size()) - 1);
  EXPECT_NEAR(
      r[0].logprob,
      direct_loglik({tokens[0]}, std::vector<int32_t>(tokens.begin() + 1, tokens.end()), plain()),
      1e-3);
  // Windows of 16: still every token exactly once, and less context makes it less likely.
  SessionLM small(*model_, plain(), options(16));
  const auto s = small.loglikelihood_rolling(std::vector<RollingRequest>{{text, {}}});
  EXPECT_EQ(s[0].n_tokens, static_cast<int>(tokens.size()) - 1);
  EXPECT_LT(s[0].logprob, r[0].logprob);
}

TEST_F(SessionLMTest, GreedyGenerationStopsAtStopSequences) {
  SessionLM lm(*model_, plain(), options());
  const std::string prompt = "Once upon a time, there was a little girl named Lily.";
  std::vector<GenerateRequest> reqs(3);
  reqs[0].context = prompt;
  reqs[0].stop = {"."};
  reqs[0].max_tokens = 64;
  reqs[1].context = prompt;
  reqs[1].stop = {"ball"};
  reqs[1].max_tokens = 64;
  reqs[2].context = prompt;
  reqs[2].max_tokens = 3;
  const auto out = lm.generate_until(reqs);
  // llama2.c's published greedy sample for stories260K.
  EXPECT_EQ(out[0].text, " She loved to play outside in the park");
  EXPECT_EQ(out[1].text, " She loved to play outside in the park. One day, she saw a big, red ");
  EXPECT_EQ(out[2].n_tokens, 3);
  EXPECT_EQ(out[2].text, out[0].text.substr(0, out[2].text.size()));
}

TEST_F(SessionLMTest, CandidateProbabilitiesAreTheRestrictedSoftmax) {
  SessionLM lm(*model_, plain(), options());
  CandidateRequest r;
  r.context = "Tom had 3 apples. He ate one. Now he has";
  for (int d = 0; d < 10; ++d) r.candidates.push_back(std::string{' ', static_cast<char>('0' + d)});
  const auto got = lm.candidate_probs(std::span(&r, 1));
  ASSERT_EQ(got[0].probs.size(), 10u);
  double sum = 0;
  for (double p : got[0].probs) sum += p;
  EXPECT_NEAR(sum, 1.0, 1e-12);
  // Against the logits of a direct prefill of the shared context.
  RequestTokenizer rt(*model_->tokenizer());
  const auto c = rt.candidates(r.context, r.candidates);
  EXPECT_EQ(got[0].tokens, c.tokens);
  SessionOptions so;
  so.n_threads = 1;
  so.n_ctx = 256;
  Session s(*model_, plain(), so);
  auto logits = s.prefill(c.context);
  double z = 0;
  for (int32_t t : c.tokens) z += std::exp(static_cast<double>(logits[t]));
  for (size_t k = 0; k < 10; ++k)
    EXPECT_NEAR(got[0].probs[k], std::exp(static_cast<double>(logits[c.tokens[k]])) / z, 1e-5);
}

// BOS follows the model's own add_bos_token setting, as lm-eval's GGUF back end and llama.cpp
// do: Llama 3's vocabulary adds it, Qwen2's does not, so a Qwen2 context starts with its text.
TEST(RequestTokens, BosFollowsTheVocabularysAddBosSetting) {
  if (test::shared_dir().empty()) GTEST_SKIP() << "shared dir not found; needs fixtures";
  for (const auto& [file, bos] : {std::pair{"fixtures/vocab/ggml-vocab-llama-bpe.gguf", true},
                                  std::pair{"fixtures/qwen2-tiny-f32.gguf", false}}) {
    const auto tok = make_tokenizer(vocab_from_gguf(*GgufFile::open(test::shared_dir() / file)));
    ASSERT_EQ(tok->vocab().add_bos, bos) << file;
    RequestTokenizer rt(*tok);
    const auto ctx = rt.context("Question: Hello world\nAnswer:");
    EncodeOptions plain;
    plain.add_bos = false;
    std::vector<int32_t> want = tok->encode("Question: Hello world\nAnswer:", plain);
    if (bos) want.insert(want.begin(), tok->vocab().bos);
    EXPECT_EQ(ctx, want) << file;
  }
}

}  // namespace
}  // namespace reprise::eval
