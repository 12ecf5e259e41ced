// The evaluator's progress: it moves with every item's worth of answered requests inside a
// batch, not only at batch ends, and unhooks itself from the model afterwards.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "eval/evaluator.h"
#include "eval/tasks/jsonl_task.h"
#include "support/test_support.h"
#include "util/error.h"

namespace reprise::eval {
namespace {

// Scores every continuation 0 and, when `per_request` is set, reports each answer as it is made,
// last request first (a model may reorder its work). Throws on the batch numbered `fail_at`.
class CountingLM final : public LanguageModel {
 public:
  const Tokenizer& tokenizer() const override { throw Error("no tokenizer"); }
  std::string description() const override { return "counting"; }
  std::vector<LoglikelihoodResult> loglikelihood(std::span<const LoglikelihoodRequest> r) override {
    if (++batches == fail_at) throw Error("model failed");
    for (size_t k = 0; k < r.size() && per_request; ++k) request_done();
    return std::vector<LoglikelihoodResult>(r.size(), LoglikelihoodResult{0.0, true, 1});
  }
  std::vector<RollingResult> loglikelihood_rolling(std::span<const RollingRequest>) override {
    throw Error("unused");
  }
  std::vector<GenerateResult> generate_until(std::span<const GenerateRequest>) override {
    throw Error("unused");
  }
  std::vector<CandidateResult> candidate_probs(std::span<const CandidateRequest>) override {
    throw Error("unused");
  }
  void answer_outside_a_batch() const { request_done(); }
  bool per_request = true;
  int batches = 0, fail_at = -1;
};

// Six two-choice items: two requests each.
std::unique_ptr<Task> six_items() {
  const auto path = test::scratch("progress-six.jsonl");
  std::ofstream f(path);
  for (int k = 0; k < 6; ++k)
    f << "{\"context\": \"q" << k << "\", \"choices\": [\" a\", \" b\"], \"gold\": 0}\n";
  f.close();
  return load_jsonl_task(path);
}

TEST(EvalProgress, MovesEveryItemInsideABatch) {
  auto task = six_items();
  CountingLM lm;
  EvalOptions o;
  o.batch_items = 4;  // batches of items 0-3 (8 requests) and 4-5 (4 requests)
  std::vector<size_t> calls;
  o.progress = [&](size_t done) { calls.push_back(done); };
  evaluate(*task, lm, o);
  EXPECT_EQ(calls, (std::vector<size_t>{1, 2, 3, 4, 5, 6}));
  // The hook is gone: an answer outside evaluate() reports nothing.
  lm.answer_outside_a_batch();
  EXPECT_EQ(calls.size(), 6u);

  // A model that does not report its answers moves the bar once per batch.
  CountingLM quiet;
  quiet.per_request = false;
  calls.clear();
  evaluate(*task, quiet, o);
  EXPECT_EQ(calls, (std::vector<size_t>{4, 6}));
}

TEST(EvalProgress, UnhooksWhenTheModelThrows) {
  auto task = six_items();
  CountingLM lm;
  lm.fail_at = 2;
  EvalOptions o;
  o.batch_items = 4;
  std::vector<size_t> calls;
  o.progress = [&](size_t done) { calls.push_back(done); };
  EXPECT_THROW(evaluate(*task, lm, o), Error);
  EXPECT_EQ(calls, (std::vector<size_t>{1, 2, 3, 4}));
  lm.answer_outside_a_batch();  // would call into evaluate()'s finished frame if still hooked
  EXPECT_EQ(calls.size(), 4u);
}

}  // namespace
}  // namespace reprise::eval
