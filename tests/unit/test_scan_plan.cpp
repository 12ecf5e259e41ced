#include <gtest/gtest.h>

#include "scan/plan.h"
#include "util/error.h"

namespace reprise::scan {
namespace {

TEST(ScanPlan, FullRepeatGridAtN24Has300Configs) {
  auto configs = plan_dense(24, {});
  EXPECT_EQ(configs.size(), 300u);  // every 0 <= i < j <= 24
  // Per item, running every config from the embeddings costs sum(24 + (j - i)) = 9800 layer
  // passes; starting each from the baseline's boundary j costs sum(N - i) = 4900 (+24 baseline).
  int64_t full = 0, reused = 24;
  for (const auto& c : configs) {
    const int len = c.path(24).size();
    full += len;
    reused += len - c.j;
  }
  EXPECT_EQ(full, 9800);
  EXPECT_EQ(reused, 4924);
}

TEST(ScanPlan, ModesAndPaths) {
  PlanOptions o;
  o.modes = {Mode::Repeat, Mode::Skip, Mode::Loop};
  o.loops = {3, 4};
  auto configs = plan_dense(3, o);
  // repeat: 6 blocks; skip: 6 minus the whole model; loop: 6 blocks x 2 counts.
  EXPECT_EQ(configs.size(), 6u + 5u + 12u);
  EXPECT_EQ((Config{Mode::Repeat, 1, 3, 2}.path(4).layers), (std::vector<int>{0, 1, 2, 1, 2, 3}));
  EXPECT_EQ((Config{Mode::Skip, 1, 3, 0}.path(4).layers), (std::vector<int>{0, 3}));
  EXPECT_EQ((Config{Mode::Loop, 1, 2, 3}.path(3).layers), (std::vector<int>{0, 1, 1, 1, 2}));
}

TEST(ScanPlan, KeysRoundTrip) {
  for (Config c : {Config::baseline(), Config{Mode::Repeat, 3, 7, 2}, Config{Mode::Skip, 0, 2, 0},
                   Config{Mode::Loop, 4, 6, 3}})
    EXPECT_EQ(Config::from_key(c.key()), c) << c.key();
  EXPECT_EQ((Config{Mode::Loop, 4, 6, 3}.key()), "loop:4:6:3");
  EXPECT_THROW(Config::from_key("repeat:3"), Error);
  EXPECT_THROW(Config::from_key("warp:1:2"), Error);
}

TEST(ScanPlan, RangesAndBlockSizes) {
  PlanOptions o;
  o.block_min = 2;
  o.block_max = 3;
  o.i_range = Range{1, 3};
  for (const auto& c : plan_dense(6, o)) {
    EXPECT_GE(c.j - c.i, 2);
    EXPECT_LE(c.j - c.i, 3);
    EXPECT_TRUE(c.i == 1 || c.i == 2);
  }
  EXPECT_EQ(plan_dense(6, o).size(), 4u);
}

TEST(ScanPlan, CoarseThenRefine) {
  auto coarse = plan_coarse(8, {}, 4);
  // i in {0, 4}, j in {4, 8} with j > i: (0,4), (0,8), (4,8).
  ASSERT_EQ(coarse.size(), 3u);
  auto fine = plan_refine(8, {}, {Config{Mode::Repeat, 4, 8, 2}}, 1, coarse);
  for (const auto& c : fine) {
    EXPECT_LE(std::abs(c.i - 4), 1);
    EXPECT_LE(std::abs(c.j - 8), 1);
    EXPECT_NE(c, (Config{Mode::Repeat, 4, 8, 2}));
  }
  EXPECT_EQ(fine.size(), 5u);  // i in {3,4,5} x j in {7,8} minus (4,8)
}

TEST(ScanPlan, BadOptionsNameTheFlag) {
  PlanOptions o;
  o.i_range = Range{0, 30};
  try {
    plan_dense(24, o);
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("--i-range 0:30 is outside the model"), std::string::npos)
        << e.what();
  }
  PlanOptions m;
  m.block_min = 5;
  m.block_max = 3;
  EXPECT_THROW(plan_dense(24, m), Error);
  EXPECT_THROW(parse_mode("warp"), Error);
}

// The lists as the command line gives them; each bad value's error names its option and value.
TEST(ScanPlan, ParsesTheCommandLineLists) {
  PlanOptions o;
  parse_plan_lists({.modes = "repeat,skip,loop",
                    .loops = " 2,4",
                    .alphas = "0.5,1",
                    .i_range = "3:9",
                    .j_range = "4:12"},
                   o);
  EXPECT_EQ(o.modes, (std::vector<Mode>{Mode::Repeat, Mode::Skip, Mode::Loop}));
  EXPECT_EQ(o.loops, (std::vector<int>{2, 4}));
  EXPECT_EQ(o.alphas, (std::vector<float>{0.5f, 1.0f}));
  ASSERT_TRUE(o.i_range && o.j_range);
  EXPECT_EQ(o.i_range->lo, 3);
  EXPECT_EQ(o.i_range->hi, 9);
  EXPECT_EQ(o.j_range->hi, 12);
  PlanOptions unset;
  parse_plan_lists({}, unset);  // the defaults: repeat, k = 3 for loops, alpha 1, no ranges
  EXPECT_EQ(unset.modes, (std::vector<Mode>{Mode::Repeat}));
  EXPECT_EQ(unset.loops, (std::vector<int>{3}));
  EXPECT_FALSE(unset.i_range);

  auto error_of = [](const PlanLists& lists) {
    PlanOptions p;
    try {
      parse_plan_lists(lists, p);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error_of({.loops = "2,x"}), "--loops: 'x' is not a whole number");
  EXPECT_EQ(error_of({.loops = "3.5"}), "--loops: '3.5' is not a whole number");
  EXPECT_EQ(error_of({.alphas = "0.5,3"}), "--alphas: '3' is not a weight in [0, 2]");
  EXPECT_EQ(error_of({.i_range = "4"}), "--i-range takes a:b, got '4'");
  EXPECT_EQ(error_of({.j_range = "1:b"}), "--j-range: 'b' is not a whole number");
  EXPECT_EQ(error_of({.modes = "repeat,warp"}),
            "--mode: unknown mode 'warp' (known: repeat, skip, loop)");
}

}  // namespace
}  // namespace reprise::scan
