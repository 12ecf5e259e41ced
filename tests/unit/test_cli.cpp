// The CLI end to end on the bundled default model.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <sstream>

#include "support/test_support.h"

namespace reprise {
namespace {

std::string model_arg() {
  return "-m '" + test::default_model().string() + "'";
}

TEST(Cli, RunGreedyReproducesTheKnownStory) {
  auto r = test::run_cli("run " + model_arg() +
                         " -p 'Once upon a time, there was a little girl named Lily.' -n 32 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  // llama2.c's README sample for stories260K, and llama.cpp's greedy tokens.
  EXPECT_EQ(r.out.rfind("Once upon a time, there was a little girl named Lily. She loved to play "
                        "outside in the park. One day, she saw a big, red ball.",
                        0),
            0u)
      << r.out;
  EXPECT_NE(r.err.find("t/s"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("path: 0..4"), std::string::npos) << r.err;
}

TEST(Cli, TokenizeMatchesGoldenPromptTokens) {
  auto r = test::run_cli("tokenize " + model_arg() +
                         " -p 'Once upon a time, there was a little girl named Lily.'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream f(test::source_dir() / "tests/data/golden/stories260K.json");
  auto golden = nlohmann::json::parse(f);
  EXPECT_EQ(nlohmann::json::parse(r.out), golden["prompt_tokens"]);
}

TEST(Cli, LogitsAlongRepeatPathMatchGolden) {
  std::ifstream f(test::source_dir() / "tests/data/golden/stories260K-path-repeat.json");
  auto golden = nlohmann::json::parse(f);
  std::string tokens;
  for (auto& t : golden["prompt_tokens"]) {
    if (!tokens.empty()) tokens += ',';
    tokens += t.dump();
  }
  auto r = test::run_cli("logits " + model_arg() + " --tokens " + tokens + " --path repeat:1:4");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["path"], golden["layer_path"]);
  ASSERT_EQ(j["logits"].size(), 1u);
  auto got = j["logits"][0].get<std::vector<float>>();
  auto want = golden["logits_last"].get<std::vector<float>>();
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) EXPECT_NEAR(got[i], want[i], 1e-3f) << i;
}

TEST(Cli, LogitsAllPositions) {
  auto r = test::run_cli("logits " + model_arg() + " --tokens 1,403,407 --all-positions");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["logits"].size(), 3u);
  EXPECT_EQ(j["logits"][2].size(), 512u);
}

TEST(Cli, InfoDescribesTheModel) {
  auto r = test::run_cli("info '" + test::default_model().string() + "' --tensors");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("architecture: llama"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("layers:       5"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("blk.4.ffn_down.weight"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("tokenizer.ggml.model"), std::string::npos) << r.out;
}

// A long-rope model's factors depend on the context: info says which ones a context runs.
TEST(Cli, InfoSaysWhichLongRopeFactorsApply) {
  const auto path = test::source_dir() / "tests/data/fixtures/phi4-tiny-f32.gguf";
  auto r = test::run_cli("info '" + path.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("rope:         theta 10000, neox, rotates 12 of 16 head dims\n"),
            std::string::npos)
      << r.out;
  // The default context, min(8192, 4096), is beyond the original 256.
  EXPECT_NE(r.out.find("long rope:    original context 256, attention factor 1.27475; --ctx 4096 "
                       "runs the long factors (short factors up to --ctx 256, long beyond)"),
            std::string::npos)
      << r.out;
  r = test::run_cli("info '" + path.string() + "' -c 256");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("--ctx 256 runs the short factors"), std::string::npos) << r.out;
}

// The quantized fixtures (made by llama-quantize): their tensor types and llama.cpp's file-type
// label by name.
TEST(Cli, InfoNamesQuantizedTypesAndFileType) {
  const std::pair<const char*, const char*> cases[] = {{"llama-tiny-q4_1", "16 Q4_1"},
                                                       {"llama-tiny-q2_k", "16 Q2_K"},
                                                       {"qwen2-tiny-q3_k", "15 Q3_K"},
                                                       {"qwen2-tiny-iq4_xs", "15 IQ4_XS"}};
  const char* labels[] = {
      "file type:    Q4_1 (general.file_type 3)", "file type:    Q2_K (general.file_type 10)",
      "file type:    Q3_K_M (general.file_type 12)", "file type:    IQ4_XS (general.file_type 30)"};
  for (size_t i = 0; i < std::size(cases); ++i) {
    const auto path =
        test::source_dir() / "tests/data/fixtures" / (std::string(cases[i].first) + ".gguf");
    auto r = test::run_cli("info '" + path.string() + "'");
    ASSERT_EQ(r.exit_code, 0) << r.err;
    EXPECT_NE(r.out.find(cases[i].second), std::string::npos) << r.out;
    EXPECT_NE(r.out.find(labels[i]), std::string::npos) << r.out;
  }
}

TEST(Cli, ScriptedChatSwitchesPathsAndKeepsGoing) {
  const std::string script =
      "Once upon a time\n/path repeat:1:3\nThe dog ran\n/stats\n/path 0,9\n/frob\nA cat\n";
  auto a = test::run_cli("chat " + model_arg() + " --temp 0 -n 12 -t 2", script);
  // Two lines failed: the run goes on, and the exit code says so at the end.
  ASSERT_EQ(a.exit_code, 1) << a.err;
  EXPECT_NE(a.out.find("path set to 0..2,1..4"), std::string::npos) << a.out;
  EXPECT_NE(a.out.find("path 0..2,1..4, template chatml"), std::string::npos) << a.out;
  EXPECT_NE(a.err.find("error: layer path '0,9': layer out of range '9'"), std::string::npos)
      << a.err;
  EXPECT_NE(a.err.find("unknown command /frob"), std::string::npos) << a.err;
  // Three replies, one per user line, each non-empty; greedy chat is deterministic.
  std::istringstream lines(a.out);
  int replies = 0;
  for (std::string line; std::getline(lines, line);)
    if (!line.empty() && line.rfind("path set", 0) != 0 &&
        line.find("template chatml") == std::string::npos)
      ++replies;
  EXPECT_EQ(replies, 3) << a.out;
  auto b = test::run_cli("chat " + model_arg() + " --temp 0 -n 12 -t 1", script);
  EXPECT_EQ(a.out.substr(0, a.out.find("last reply")), b.out.substr(0, b.out.find("last reply")));
  auto bad = test::run_cli("chat " + model_arg() + " --chat-template vicuna", "hi\n");
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_NE(bad.err.find("vicuna"), std::string::npos) << bad.err;
  EXPECT_NE(bad.err.find("chatml"), std::string::npos) << bad.err;
}

void expect_cli_error(const std::string& args, const std::string& fragment) {
  auto r = test::run_cli(args);
  EXPECT_EQ(r.exit_code, 2) << args;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(Cli, BadPathsAreOneLineErrors) {
  expect_cli_error("run " + model_arg() + " -p hi --path 0,9",
                   "layer path '0,9': layer out of range '9' (the model has 5 layers, 0..4)");
  expect_cli_error("run " + model_arg() + " -p hi --path ','", "empty entry");
  expect_cli_error("run " + model_arg() + " -p hi --path 'repeat:3:2'", "end must satisfy");
}

TEST(Cli, MissingModelAndBadFlags) {
  expect_cli_error("run -m /nonexistent/model.gguf -p hi",
                   "/nonexistent/model.gguf: no such file or directory");
  expect_cli_error("run " + model_arg() + " -p hi --temp -1", "--temp must be >= 0");
  expect_cli_error("logits " + model_arg() + " --tokens 1,x", "--tokens: 'x' is not a token id");
  expect_cli_error("logits " + model_arg() + " --tokens 1,9999", "token id 9999 out of range");
  expect_cli_error("frobnicate", "frobnicate");
}

// REPRISE_PREFILL is read on the first prefill matmul (5 tokens: the gemm kernels).
TEST(Cli, BadPrefillPrecisionIsAOneLineError) {
  auto r = test::run_shell("REPRISE_PREFILL=f16 '" + test::binary() + "' logits " + model_arg() +
                           " --tokens 1,403,407,408,409");
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("REPRISE_PREFILL=f16: unknown prefill precision (q8, f32)"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  // Both precisions run.
  for (const char* p : {"f32", "q8"})
    EXPECT_EQ(test::run_shell(std::string("REPRISE_PREFILL=") + p + " '" + test::binary() +
                              "' logits " + model_arg() + " --tokens 1,403,407,408,409")
                  .exit_code,
              0)
        << p;
}

}  // namespace
}  // namespace reprise
