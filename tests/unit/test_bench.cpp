// eval/bench.h: the per-token costs counted from the weights, and a short run of the pp/tg tests.
#include <gtest/gtest.h>

#include "eval/bench.h"
#include "support/test_support.h"
#include "util/error.h"

namespace reprise::eval {
namespace {

// stories260K, all F32: d_model 64, 8 query heads and 4 KV heads of 8 dims, FFN 172, vocab 512,
// a separate output head. One layer's matrices: wq 64x64, wk and wv 64x32, wo 64x64, gate, up
// and down 64x172: 45312 weights, 181248 bytes.
TEST(Bench, TokenCostCountsEveryPathPosition) {
  auto m = Model::load(test::default_model());
  const TokenCost plain = token_cost(*m, parse_layer_path("", 5));
  EXPECT_DOUBLE_EQ(plain.matmul_flops, 2.0 * 45312 * 5);
  // head 512x64 + one embedding row (64) + the output norm (64), all 4 bytes a weight
  EXPECT_DOUBLE_EQ(plain.weight_bytes, 4.0 * (512 * 64 + 64 + 64) + 181248.0 * 5);
  const TokenCost rep = token_cost(*m, parse_layer_path("repeat:1:4", 5));  // 8 positions
  EXPECT_DOUBLE_EQ(rep.matmul_flops, 2.0 * 45312 * 8);
  EXPECT_DOUBLE_EQ(rep.weight_bytes - plain.weight_bytes, 181248.0 * 3);
}

TEST(Bench, PrefillAttentionFlops) {
  auto m = Model::load(test::default_model());
  // 4 FLOPs x 8 heads x 8 dims x (15 + 1) / 2 keys on average x 5 positions
  EXPECT_DOUBLE_EQ(prefill_attention_flops(m->hparams(), 15, 5), 4.0 * 8 * 8 * 8 * 5);
}

TEST(Bench, RunsEachTestRepsTimesAndRefusesNoRepetitions) {
  auto m = Model::load(test::default_model());
  SessionOptions so;
  so.n_ctx = 16;
  so.n_threads = 1;
  Session s(*m, parse_layer_path("", 5), so);
  BenchOptions o;
  o.n_prompt = 8;
  o.n_gen = 0;  // no tg test
  o.reps = 3;
  o.bw_mib = 16;
  const BenchResult r = run_bench(*m, s, o);
  EXPECT_EQ(r.pp.n, 3u);
  EXPECT_GT(r.pp.mean, 0);
  EXPECT_GE(r.pp.sd, 0);
  EXPECT_EQ(r.tg.n, 0u);
  EXPECT_EQ(r.tg.mean, 0);
  EXPECT_GT(r.machine_gbs, 0);
  EXPECT_DOUBLE_EQ(r.attention_flops, prefill_attention_flops(m->hparams(), 8, 5));
  o.reps = 0;
  try {
    run_bench(*m, s, o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "bench: repetitions must be >= 1, got 0");
  }
}

}  // namespace
}  // namespace reprise::eval
