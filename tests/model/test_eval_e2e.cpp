// Evaluation end to end on the bundled default model: perplexity against llama.cpp's own
// llama-perplexity figures, and eval (plain path, then a repeated block) followed by compare.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>

#include "support/test_support.h"

namespace reprise {
namespace {
namespace fs = std::filesystem;

std::string model_arg() {
  return test::default_model_arg();
}
using test::scratch;

// "[1]3.5347,[2]..." -> {1: 3.5347, ...}
std::map<int, double> running_ppl(const std::string& out) {
  std::map<int, double> m;
  const std::regex re(R"(\[(\d+)\]([0-9.]+),)");
  for (auto it = std::sregex_iterator(out.begin(), out.end(), re); it != std::sregex_iterator();
       ++it)
    m[std::stoi((*it)[1])] = std::stod((*it)[2]);
  return m;
}

double final_ppl(const std::string& out) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex(R"(Final estimate: PPL = ([0-9.]+))"))) return -1;
  return std::stod(m[1]);
}

// Reference figures printed by llama.cpp's llama-perplexity (llama.cpp as shipped in
// node-llama-cpp 3.22.1, built on the CPU), run on models/stories260K.gguf:
//   llama-perplexity -m stories260K.gguf -f data/tinystories/tinystories_val.txt -c 128 -b 128
//     [1]3.5347 [10]3.8457 [100]3.9403 ... [3070]4.9693, Final estimate: PPL = 4.9693 +/- 0.02431
//   ... -c 256 -b 256 --chunks 60:   [1]4.0448 [10]3.4981 [60]3.8854, PPL = 3.8854 +/- 0.08171
//   ... -f data/wikitext2/test.txt -c 128 -b 128 --chunks 100:
//     [1]76.0440 [10]339.8052 [100]209.4060, PPL = 209.4060 +/- 12.66955
// llama.cpp prints four decimals; the engine's logits agree with llama.cpp's to ~1e-3, so the
// perplexities must agree to 0.1%.
struct Reference {
  std::string file;
  int ctx, chunks;
  std::map<int, double> running;
};

void expect_matches(const Reference& ref) {
  const std::string args =
      "perplexity " + model_arg() + " -f '" + (test::source_dir() / ref.file).string() + "' -c " +
      std::to_string(ref.ctx) + (ref.chunks ? " --chunks " + std::to_string(ref.chunks) : "");
  auto r = test::run_cli(args);
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto got = running_ppl(r.out);
  for (const auto& [chunk, want] : ref.running) {
    ASSERT_TRUE(got.count(chunk)) << ref.file << " chunk " << chunk;
    EXPECT_NEAR(got.at(chunk), want, 1e-3 * want + 5e-5) << ref.file << " chunk " << chunk;
  }
  EXPECT_NEAR(final_ppl(r.out), ref.running.rbegin()->second,
              1e-3 * ref.running.rbegin()->second + 5e-5);
}

TEST(EvalE2E, PerplexityMatchesLlamaCppOnTinyStories) {
  expect_matches({"data/tinystories/tinystories_val.txt",
                  128,
                  100,
                  {{1, 3.5347}, {10, 3.8457}, {100, 3.9403}}});
  expect_matches(
      {"data/tinystories/tinystories_val.txt", 256, 60, {{1, 4.0448}, {10, 3.4981}, {60, 3.8854}}});
}

TEST(EvalE2E, PerplexityMatchesLlamaCppOnTheWholeTinyStoriesSample) {
  // All 3070 chunks of 128 tokens (193,410 scored tokens; about 10 s on one core).
  expect_matches({"data/tinystories/tinystories_val.txt",
                  128,
                  0,
                  {{1, 3.5347}, {10, 3.8457}, {100, 3.9403}, {1000, 4.2574}, {3070, 4.9693}}});
}

TEST(EvalE2E, PerplexityMatchesLlamaCppOnWikiText) {
  expect_matches(
      {"data/wikitext2/test.txt", 128, 100, {{1, 76.0440}, {10, 339.8052}, {100, 209.4060}}});
}

TEST(EvalE2E, SlidingWindowScoresEveryTokenOnce) {
  auto r = test::run_cli("perplexity " + model_arg() + " -f '" +
                         (test::source_dir() / "data/tinystories/tinystories_val.txt").string() +
                         "' -c 128 --stride 64 --chunks 20 --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  // Window 1 scores tokens 1..127, each later one the 64 tokens past the previous window.
  EXPECT_EQ(j["scored"], 127 + 19 * 64);
  EXPECT_EQ(j["chunks"], 20);
  // Every token keeps at least 64 tokens of history: close to the chunked figure, not equal.
  EXPECT_GT(j["ppl"].get<double>(), 3.0);
  EXPECT_LT(j["ppl"].get<double>(), 5.0);
}

TEST(EvalE2E, PlainVersusRepeatedBlockThenCompare) {
  const std::string tasks =
      "arc_easy,winogrande,probe_logic:3,probe_chain:2,probe_math:2,tinystories";
  const fs::path a = scratch("plain.json"), b = scratch("repeat.json"),
                 sb = scratch("repeat.jsonl"), cmp = scratch("cmp.json");
  auto ra = test::run_cli("eval " + model_arg() + " --task " + tasks + " --limit 40 -o '" +
                          a.string() + "'");
  ASSERT_EQ(ra.exit_code, 0) << ra.err;
  auto rb =
      test::run_cli("eval " + model_arg() + " --path repeat:1:4 --task " + tasks +
                    " --limit 40 -o '" + b.string() + "' --log-samples '" + sb.string() + "'");
  ASSERT_EQ(rb.exit_code, 0) << rb.err;
  EXPECT_NE(rb.err.find("path: 0..3,1..4"), std::string::npos) << rb.err;

  std::ifstream fa(a), fb(b);
  auto ja = nlohmann::json::parse(fa), jb = nlohmann::json::parse(fb);
  EXPECT_EQ(jb["config"]["path"], "0..3,1..4");
  for (const char* t : {"arc_easy", "winogrande", "probe_logic:3", "tinystories"}) {
    ASSERT_EQ(ja["samples"][t].size(), 40u) << t;
    for (size_t i = 0; i < 40; ++i)
      EXPECT_EQ(ja["samples"][t][i]["doc_hash"], jb["samples"][t][i]["doc_hash"]) << t << i;
  }
  // Repeating layers 1-3 changes the model: the passages' likelihoods move.
  EXPECT_NE(ja["results"]["tinystories"]["loglik_per_token,none"],
            jb["results"]["tinystories"]["loglik_per_token,none"]);

  auto c =
      test::run_cli("compare '" + a.string() + "' '" + sb.string() + "' -o '" + cmp.string() + "'");
  ASSERT_EQ(c.exit_code, 0) << c.err;
  for (const char* t : {"arc_easy:", "winogrande:", "probe_logic:3:", "probe_chain:2:",
                        "probe_math:2:", "tinystories:"})
    EXPECT_NE(c.out.find(std::string("\n") + t), std::string::npos) << t << "\n" << c.out;
  std::ifstream fc(cmp);
  auto jc = nlohmann::json::parse(fc);
  EXPECT_EQ(jc["verdicts"].size(), 6u);
  EXPECT_EQ(jc["bootstrap"]["resamples"], 10000);
  for (const auto& row : jc["rows"]) {
    EXPECT_EQ(row["n"], 40) << row.dump();
    EXPECT_EQ(row["test"], row["kind"] == "binary" ? "mcnemar" : "paired_t") << row.dump();
    if (!row["p"].is_null()) {
      EXPECT_GE(row["p_holm"].get<double>(), row["p"].get<double>());
    }
  }

  // A run over other items is refused.
  const fs::path shorter = scratch("short.json");
  ASSERT_EQ(test::run_cli("eval " + model_arg() + " --task " + tasks + " --limit 20 -o '" +
                          shorter.string() + "'")
                .exit_code,
            0);
  auto refused = test::run_cli("compare '" + a.string() + "' '" + shorter.string() + "'");
  EXPECT_EQ(refused.exit_code, 2);
  EXPECT_NE(refused.err.find("cannot compare task arc_easy"), std::string::npos) << refused.err;
}

}  // namespace
}  // namespace reprise
