// Sampler options shared by the CLI and the server: top_p 0, min-p, the repeat penalty, and the
// one-line errors for values out of range.
#include <gtest/gtest.h>

#include <set>
#include <vector>

#include "engine/sampler.h"
#include "support/test_support.h"
#include "util/error.h"

namespace reprise {
namespace {

// Token 2 is the most likely; tokens 0 and 3 are a fair way behind, 1 far behind.
const std::vector<float> kLogits = {1.0f, -3.0f, 2.0f, 1.0f};

std::set<int32_t> drawn(SamplerOptions o, const std::vector<float>& logits, int n = 400) {
  Sampler s(o);
  std::set<int32_t> out;
  for (int i = 0; i < n; ++i) out.insert(s.sample(logits));
  return out;
}

SamplerOptions hot() {
  SamplerOptions o;
  o.temperature = 1.0f;
  o.top_k = 0;
  o.top_p = 1.0f;
  o.seed = 7;
  return o;
}

TEST(Sampler, TopPZeroKeepsOnlyTheMostLikelyToken) {
  EXPECT_EQ(drawn(hot(), kLogits), (std::set<int32_t>{0, 1, 2, 3}));
  SamplerOptions o = hot();
  o.top_p = 0;
  EXPECT_EQ(drawn(o, kLogits), std::set<int32_t>{2});
}

TEST(Sampler, MinPDropsTokensFarBehindTheBest) {
  // p(0) / p(2) = e^-1 = 0.37, p(1) / p(2) = e^-5 = 0.007.
  SamplerOptions o = hot();
  o.min_p = 0.05f;
  EXPECT_EQ(drawn(o, kLogits), (std::set<int32_t>{0, 2, 3}));
  o.min_p = 0.5f;
  EXPECT_EQ(drawn(o, kLogits), std::set<int32_t>{2});
}

TEST(Sampler, RepeatPenaltyDividesPositiveAndMultipliesNegativeLogits) {
  SamplerOptions o;  // greedy: the penalty applies before the argmax, as in llama.cpp
  o.repeat_penalty = 2.5f;
  Sampler s(o);
  EXPECT_EQ(s.sample(kLogits), 2);
  s.accept(2);  // 2.0 / 2.5 = 0.8 < 1.0: token 0 (the first of the two 1.0s) wins
  EXPECT_EQ(s.sample(kLogits), 0);
  s.accept(0);
  s.accept(3);  // 0, 2, 3 all penalised: 0.4, 0.8, 0.4 against -3 for token 1
  EXPECT_EQ(s.sample(kLogits), 2);
  // The window forgets tokens older than repeat_last_n.
  o.repeat_last_n = 1;
  Sampler w(o);
  w.accept(2);
  w.accept(0);
  EXPECT_EQ(w.sample(kLogits), 2);
}

TEST(Sampler, OutOfRangeOptionsNameTheFlag) {
  auto error_of = [](SamplerOptions o) -> std::string {
    try {
      Sampler{o};
    } catch (const Error& e) {
      return e.what();
    }
    return "";
  };
  SamplerOptions o;
  o.top_p = 1.5f;
  EXPECT_CONTAINS(error_of(o), "--top-p must be in [0, 1], got 1.5");
  o = {};
  o.min_p = -0.1f;
  EXPECT_CONTAINS(error_of(o), "--min-p");
  o = {};
  o.repeat_penalty = 0;
  EXPECT_CONTAINS(error_of(o), "--repeat-penalty must be > 0");
  o = {};
  o.repeat_last_n = -1;
  EXPECT_CONTAINS(error_of(o), "--repeat-last-n");
}

}  // namespace
}  // namespace reprise
