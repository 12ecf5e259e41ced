// Damped path positions (x <- x + alpha * delta): the notation round-trips, alpha = 1 is today's
// repeat and alpha = 0 drops the pass (bit for bit), scans list one config per weight, and an
// export scales the two residual projections so that its plain path computes the damped one.
#include <gtest/gtest.h>

#include <fmt/format.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>

#include "engine/layer_path.h"
#include "engine/prefix_cache.h"
#include "engine/session.h"
#include "export/export.h"
#include "scan/plan.h"
#include "support/logits.h"
#include "support/test_support.h"
#include "util/error.h"

namespace reprise {
namespace {

namespace fs = std::filesystem;

// "<s> Once upon a time, there was a little girl named Lily." in the tok512 vocabulary.
const std::vector<int32_t> kPrompt = {1, 403, 407, 261, 378, 270, 293, 263, 414, 259, 264, 280};

std::vector<float> logits(const Model& m, const std::string& spec) {
  return test::prompt_logits(m, parse_layer_path(spec, m.hparams().n_layer), kPrompt);
}

bool bitwise_equal(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

TEST(DampedPath, ParsesShorthandAndLists) {
  const LayerPath r = parse_layer_path("repeat:1:3@0.5", 5);
  EXPECT_EQ(r.layers, (std::vector<int>{0, 1, 2, 1, 2, 3, 4}));
  EXPECT_EQ(r.alpha, (std::vector<float>{1, 1, 1, 0.5f, 0.5f, 1, 1}));
  EXPECT_EQ(r.canonical(), "0..2,1..2@0.5,3..4");
  EXPECT_EQ(parse_layer_path("0..2,1..2@0.5,3..4", 5), r);
  // Every pass after the first is damped.
  EXPECT_EQ(parse_layer_path("repeat:1:2:3@0.25", 5).canonical(), "0..1,1@0.25,1@0.25,2..4");
  EXPECT_EQ(parse_layer_path("0,1,2@0.75,2", 5).canonical(), "0..1,2@0.75,2");
  // A weight of 1 is the plain path, and compares equal to it.
  EXPECT_EQ(parse_layer_path("repeat:1:3@1", 5), parse_layer_path("repeat:1:3", 5));
  EXPECT_EQ(parse_layer_path("0..4@1", 5).canonical(), "0..4");
  EXPECT_FALSE(parse_layer_path("repeat:1:3@1", 5).damped());
  EXPECT_TRUE(r.damped());
}

TEST(DampedPath, CanonicalFormParsesBack) {
  for (const char* spec : {"repeat:0:5@0.3333333", "repeat:2:4:4@0", "0@2,0@0.1,4..0@1.5",
                           "1..3@0.5,1..3@0.25,4", "repeat:1:3@0.75"}) {
    SCOPED_TRACE(spec);
    LayerPath p;
    try {
      p = parse_layer_path(spec, 5);
    } catch (const Error&) {
      continue;  // "4..0" is descending; checked below
    }
    EXPECT_EQ(parse_layer_path(p.canonical(), 5), p);
    EXPECT_EQ(parse_layer_path(p.canonical(), 5).canonical(), p.canonical());
  }
  EXPECT_EQ(parse_layer_path("repeat:0:5@0.3333333", 5).canonical(), "0..4,0..4@0.3333333");
}

TEST(DampedPath, RefusesBadWeights) {
  auto message = [](const char* spec) {
    try {
      parse_layer_path(spec, 5);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("repeat:1:3@x").find("weight after @ must be a number in [0, 2]"),
            std::string::npos);
  EXPECT_NE(message("1..3@-0.5").find("'1..3@-0.5'"), std::string::npos);
  EXPECT_NE(message("1@2.5").find("in [0, 2]"), std::string::npos);
  EXPECT_NE(message("1@nan").find("in [0, 2]"), std::string::npos);
  EXPECT_NE(message("skip:1:3@0.5").find("skip takes no weight"), std::string::npos);
  EXPECT_NE(message("1,@0.5").find("empty entry"), std::string::npos);
}

void expect_alpha_semantics(const fs::path& model_file) {
  auto m = Model::load(model_file);
  const int n = m->hparams().n_layer;
  ASSERT_GE(n, 4);
  EXPECT_TRUE(bitwise_equal(logits(*m, "repeat:1:3@1"), logits(*m, "repeat:1:3")));
  // Weight 0: the second pass adds nothing, so the logits are those of the plain path.
  EXPECT_TRUE(bitwise_equal(logits(*m, "repeat:1:3@0"), logits(*m, "")));
  EXPECT_TRUE(bitwise_equal(logits(*m, fmt::format("0..2,1@0,3..{}", n - 1)), logits(*m, "")));
  // A weight in between is neither.
  const auto half = logits(*m, "repeat:1:3@0.5");
  EXPECT_GT(test::max_abs_diff(half, logits(*m, "repeat:1:3")), 1e-3f);
  EXPECT_GT(test::max_abs_diff(half, logits(*m, "")), 1e-3f);
}

TEST(DampedPath, AlphaOneIsTheRepeatAndZeroDropsThePassOnStories260K) {
  expect_alpha_semantics(test::default_model());
}

TEST(DampedPath, AlphaOneIsTheRepeatAndZeroDropsThePassOnAFixture) {
  if (!test::have_shared()) GTEST_SKIP() << "shared fixtures not available";
  expect_alpha_semantics(test::shared_dir() / "fixtures/qwen2-tiny-f32.gguf");
}

// A path with the base path's layers but a damped position must not reuse the base run there.
TEST(DampedPath, PrefixReuseStopsAtTheFirstDampedPosition) {
  auto m = Model::load(test::default_model());
  SessionOptions so;
  so.n_threads = 2;
  so.n_ctx = 64;
  PrefixCache cache(*m, LayerPath::identity(5), so, uint64_t{64} << 20);
  const LayerPath damped = parse_layer_path("0..1,2@0.5,3..4", 5);
  EXPECT_EQ(cache.shared_positions(damped), 2);
  Session with_cache(*m, damped, so);
  with_cache.set_prefix_cache(&cache);
  const auto got = with_cache.prefill(kPrompt, true);
  EXPECT_TRUE(bitwise_equal({got.begin(), got.end()}, logits(*m, "0..1,2@0.5,3..4")));
  EXPECT_GT(test::max_abs_diff({got.begin(), got.end()}, logits(*m, "")), 1e-3f);
}

TEST(DampedPath, ScanPlanListsEachWeightOnce) {
  scan::PlanOptions o;
  o.alphas = {0.5f, 1.0f};
  o.block_min = o.block_max = 4;
  const auto configs = scan::plan_dense(5, o);
  std::vector<std::string> keys;
  for (const auto& c : configs) keys.push_back(c.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"repeat:0:4@0.5", "repeat:0:4", "repeat:1:5@0.5",
                                            "repeat:1:5"}));
  EXPECT_EQ(scan::Config::from_key("repeat:0:4@0.5"), configs[0]);
  EXPECT_EQ(configs[0].path(5).canonical(), "0..3,0..3@0.5,4");
  EXPECT_EQ(scan::Config::from_key("loop:1:3:3@0.25").path(5).canonical(),
            "0..2,1..2@0.25,1..2@0.25,3..4");
  EXPECT_THROW(scan::Config::from_key("skip:1:3@0.5"), Error);
  o.alphas = {0.5f, 3.0f};
  EXPECT_THROW(scan::plan_dense(5, o), Error);
}

class DampedExport : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::temp_directory_path() / ("reprise-damped-" + std::to_string(::getpid()));
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }
  fs::path dir_;
};

// Exported with scaled attn_output and ffn_down, the plain path computes the damped path; in F32
// only the rounding of alpha * w (and of a sum in another order) separates them.
TEST_F(DampedExport, GgufAndHfOfADampedPathComputeIt) {
  std::vector<fs::path> models = {test::default_model()};
  if (test::have_shared()) models.push_back(test::shared_dir() / "fixtures/llama-tiny-f32.gguf");
  for (const auto& file : models) {
    SCOPED_TRACE(file.string());
    auto src = Model::load(file);
    const LayerPath path = parse_layer_path("repeat:1:3@0.5", src->hparams().n_layer);
    for (auto format : {exporter::Format::Gguf, exporter::Format::Hf}) {
      const fs::path out = dir_ / (format == exporter::Format::Gguf ? "d.gguf" : "d-hf");
      fs::remove_all(out);
      exporter::ExportOptions o;
      o.format = format;
      o.n_threads = 2;
      exporter::export_model(*src, path, out, o);
      auto exported = Model::load(out);
      const auto got = test::prompt_logits(*exported, LayerPath::identity(path.size()), kPrompt);
      const auto want = test::prompt_logits(*src, path, kPrompt);
      EXPECT_LE(test::max_abs_diff(got, want), 1e-4f);
      // ...and differs from the undamped export by far more than that.
      const auto plain = test::prompt_logits(
          *src, parse_layer_path("repeat:1:3", src->hparams().n_layer), kPrompt);
      EXPECT_GT(test::max_abs_diff(got, plain), 1e-2f);
    }
  }
}

TEST_F(DampedExport, MergekitRefusesADampedPath) {
  auto src = Model::load(test::default_model());
  exporter::ExportOptions o;
  o.format = exporter::Format::Mergekit;
  try {
    exporter::export_model(*src, parse_layer_path("repeat:1:3@0.5", 5), dir_ / "r.yaml", o);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot carry damped (@) positions"), std::string::npos)
        << e.what();
  }
  EXPECT_FALSE(fs::exists(dir_ / "r.yaml"));
}

// ExLlamaV3's layer_map: comma-separated indices and inclusive a..b ranges ("0..6,4..6" runs 4, 5
// and 6 twice, per its Config docstring), over the source model's layer numbers.
TEST_F(DampedExport, Exl3LayerMapOfUndampedPathsOnly) {
  EXPECT_EQ(exporter::exl3_layer_map(parse_layer_path("repeat:1:4", 5)), "0..3,1..4");
  EXPECT_EQ(exporter::exl3_layer_map(parse_layer_path("skip:2:3", 5)), "0..1,3..4");
  EXPECT_EQ(exporter::exl3_layer_map(parse_layer_path("4,3,2,1,0", 5)), "4,3,2,1,0");
  EXPECT_EQ(exporter::exl3_layer_map(parse_layer_path("repeat:2:3:3", 5)), "0..2,2,2..4");
  EXPECT_THROW(exporter::exl3_layer_map(LayerPath{}), Error);
  try {
    exporter::exl3_layer_map(parse_layer_path("repeat:1:4@0.5", 5));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("layer_map cannot carry damped (@) positions"),
              std::string::npos);
  }
  const fs::path out = dir_ / "layer_map.txt";
  auto r = test::run_cli("export " + test::default_model_arg() +
                         " --path repeat:1:4 --format exl3 -o '" + out.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::slurp(out), "0..3,1..4\n");
  r = test::run_cli("export " + test::default_model_arg() +
                    " --path repeat:1:4@0.5 --format exl3 --force -o '" + out.string() + "'");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_EQ(test::slurp(out), "0..3,1..4\n");  // left as it was
}

TEST_F(DampedExport, QuantizedExportSaysItRequantizes) {
  if (!test::have_shared()) GTEST_SKIP() << "shared fixtures not available";
  auto src = Model::load(test::shared_dir() / "fixtures/llama-tiny-q8_0.gguf");
  exporter::ExportOptions o;
  o.n_threads = 2;
  const auto res =
      exporter::export_model(*src, parse_layer_path("repeat:1:3@0.5", 4), dir_ / "q.gguf", o);
  bool said = false;
  for (const auto& n : res.notes) said |= n.find("scaled and requantized to Q8_0") != n.npos;
  EXPECT_TRUE(said);
  auto exported = Model::load(dir_ / "q.gguf");
  const auto got = test::prompt_logits(*exported, LayerPath::identity(6), kPrompt);
  const auto want = test::prompt_logits(*src, parse_layer_path("repeat:1:3@0.5", 4), kPrompt);
  EXPECT_LE(test::max_abs_diff(got, want), 0.05f);
}

}  // namespace
}  // namespace reprise
