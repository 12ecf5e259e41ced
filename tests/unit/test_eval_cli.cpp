// eval / compare / perplexity on the command line: bad input gives one-line errors (exit 2),
// and a small run on the bundled model writes lm-evaluation-harness-shaped results.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "support/test_support.h"

namespace reprise {
namespace {
namespace fs = std::filesystem;

std::string model_arg() {
  return test::default_model_arg();
}
using test::scratch;

void expect_error(const std::string& args, const std::string& fragment) {
  auto r = test::run_cli(args);
  EXPECT_EQ(r.exit_code, 2) << args << "\n" << r.err;
  EXPECT_NE(r.err.find(fragment), std::string::npos) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
}

TEST(EvalCli, ListShowsTasksAndMetrics) {
  auto r = test::run_cli("eval --list");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* s :
       {"tinystories", "wikitext2", "arc_easy", "arc_challenge", "winogrande", "boolq",
        "gsm8k_zeroshot", "eq_bench", "bbh_word_sorting", "bbh_cot_fewshot_date_understanding",
        "probe_math", "probe_logic", "probe_chain", "acc_norm (binary)", "rys_score (continuous)",
        "exact_match,strict-match (binary)", "exact_match,get-answer"})
    EXPECT_NE(r.out.find(s), std::string::npos) << s;
}

TEST(EvalCli, UnknownTaskListsTheKnownOnes) {
  expect_error("eval " + model_arg() + " --task arc_easy,mmlu",
               "unknown task 'mmlu' (known: tinystories, wikitext2, arc_easy, arc_challenge");
}

TEST(EvalCli, LimitZeroIsRefused) {
  expect_error("eval " + model_arg() + " --task arc_easy --limit 0",
               "--limit 0: must be at least 1");
}

TEST(EvalCli, MalformedJsonlNamesFileAndLine) {
  const fs::path f = scratch("broken.jsonl");
  std::ofstream(f) << "{\"context\": \"a\", \"choices\": [\" x\", \" y\"], \"gold\": 0}\n"
                   << "{\"context\": \"b\", \"choices\": [\" x\" \" y\"], \"gold\": 0}\n";
  expect_error("eval " + model_arg() + " --task '" + f.string() + "'",
               f.string() + ":2: not valid JSON");
}

TEST(EvalCli, MissingModelOrTask) {
  expect_error("eval --task arc_easy", "eval needs -m MODEL");
  expect_error("eval " + model_arg(), "eval needs --task");
}

TEST(EvalCli, SmallRunWritesResultsAndSamples) {
  const fs::path out = scratch("small.json"), samples = scratch("small.jsonl");
  auto r = test::run_cli("eval " + model_arg() + " --task arc_easy,probe_chain:2 --limit 3 -o '" +
                         out.string() + "' --log-samples '" + samples.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| arc_easy      | acc_norm    |"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("6/6 items"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("ETA"), std::string::npos) << r.err;
  std::ifstream f(out);
  auto j = nlohmann::json::parse(f);
  EXPECT_TRUE(j["results"]["arc_easy"].contains("acc,none"));
  EXPECT_TRUE(j["results"]["arc_easy"].contains("acc_stderr,none"));
  EXPECT_EQ(j["n-samples"]["probe_chain:2"]["effective"], 3);
  EXPECT_EQ(j["n-samples"]["arc_easy"]["original"], 2376);
  EXPECT_EQ(j["config"]["prompt_format"], "plain");
  EXPECT_EQ(j["config"]["path"], "0..4");
  EXPECT_EQ(j["samples"]["arc_easy"][2]["id"], "arc_easy/2");
  std::ifstream s(samples);
  std::string line;
  int lines = 0;
  while (std::getline(s, line)) {
    ++lines;
    const auto l = nlohmann::json::parse(line);
    // lm-eval's per-sample fields.
    for (const char* key : {"doc_id", "doc", "target", "arguments", "resps", "filtered_resps",
                            "filter", "metrics", "doc_hash", "prompt_hash", "target_hash"})
      EXPECT_TRUE(l.contains(key)) << key << " in " << line;
    if (l["task"] == "arc_easy" && l["doc_id"] == 0) {
      EXPECT_EQ(l["arguments"]["gen_args_0"]["arg_0"],
                "Question: Which statement best explains why photosynthesis is the foundation "
                "of most food webs?\nAnswer:");
      EXPECT_EQ(l["metrics"], nlohmann::json::array({"acc", "acc_norm"}));
      EXPECT_EQ(l["target"], "0");  // lm-eval logs the gold index
      EXPECT_TRUE(l.contains("acc_norm"));
    }
  }
  EXPECT_EQ(lines, 6);
}

// lm-eval's own table printer reads our results file. Needs a Python with lm_eval importable:
// REPRISE_LM_EVAL_PYTHON (default python3), e.g. a venv with `pip install --no-deps
// lm-eval==0.4.13 pytablewriter jinja2 pyyaml numpy requests`.
TEST(EvalCli, LmEvalTablePrinterLoadsOurResults) {
  const char* env = std::getenv("REPRISE_LM_EVAL_PYTHON");
  const std::string py = env && *env ? env : REPRISE_LMEVAL_PYTHON;
  if (std::system((py + " -c 'import lm_eval.utils' >/dev/null 2>&1").c_str()) != 0)
    GTEST_SKIP() << "lm_eval is not importable by " << py
                 << " (set REPRISE_LM_EVAL_PYTHON to a Python that has it)";
  const fs::path out = scratch("lmeval_table.json"), table = scratch("lmeval_table.txt");
  auto r = test::run_cli("eval " + model_arg() +
                         " --task arc_easy,boolq,gsm8k_zeroshot,probe_chain:2 --limit 2 -o '" +
                         out.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string cmd = py +
                          " -c 'import json, sys; from lm_eval.utils import make_table; "
                          "print(make_table(json.load(open(sys.argv[1]))))' '" +
                          out.string() + "' > '" + table.string() + "' 2>&1";
  ASSERT_EQ(std::system(cmd.c_str()), 0);
  std::ifstream f(table);
  const std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  for (const char* s : {"|arc_easy", "acc_norm", "strict-match", "flexible-extract", "|boolq"})
    EXPECT_NE(text.find(s), std::string::npos) << s << "\n" << text;
}

// A chat-templated run and a plain one score different prompts: the samples log shows the
// templated prompt, the item hashes differ, and compare refuses to pair them.
TEST(EvalCli, CompareRefusesChatAgainstPlain) {
  const fs::path a = scratch("fmt_plain.jsonl"), b = scratch("fmt_chat.jsonl");
  ASSERT_EQ(test::run_cli("eval " + model_arg() + " --task arc_easy --limit 2 --log-samples '" +
                          a.string() + "'")
                .exit_code,
            0);
  auto r = test::run_cli("eval " + model_arg() + " --task arc_easy --limit 2 --chat chatml " +
                         "--log-samples '" + b.string() + "'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::ifstream fa(a), fb(b);
  std::string la, lb;
  std::getline(fa, la);
  std::getline(fb, lb);
  const auto ja = nlohmann::json::parse(la), jb = nlohmann::json::parse(lb);
  EXPECT_EQ(jb["prompt_format"], "chat:chatml");
  const std::string seen = jb["arguments"]["gen_args_0"]["arg_0"];
  EXPECT_EQ(seen.rfind("<|im_start|>user\nQuestion: Which statement", 0), 0u) << seen;
  EXPECT_NE(ja["doc_hash"], jb["doc_hash"]);
  EXPECT_NE(ja["prompt_hash"], jb["prompt_hash"]);
  expect_error("compare '" + a.string() + "' '" + b.string() + "'",
               "is plain, B (" + b.string() + ") is chat:chatml");
}

TEST(EvalCli, CompareRefusesDifferentTasks) {
  const fs::path a = scratch("cmp_a.json"), b = scratch("cmp_b.json");
  ASSERT_EQ(test::run_cli("eval " + model_arg() + " --task probe_chain:1 --limit 2 -o '" +
                          a.string() + "'")
                .exit_code,
            0);
  ASSERT_EQ(test::run_cli("eval " + model_arg() + " --task probe_logic:3 --limit 2 -o '" +
                          b.string() + "'")
                .exit_code,
            0);
  expect_error("compare '" + a.string() + "' '" + b.string() + "'",
               "cannot compare runs of different tasks");
  auto same = test::run_cli("compare '" + a.string() + "' '" + a.string() + "'");
  ASSERT_EQ(same.exit_code, 0) << same.err;
  EXPECT_NE(same.out.find("probe_chain:1: no difference on digit_score"), std::string::npos)
      << same.out;
}

TEST(EvalCli, PerplexityNeedsEnoughTokens) {
  const fs::path f = scratch("short.txt");
  std::ofstream(f) << "Once upon a time.\n";
  expect_error("perplexity " + model_arg() + " -f '" + f.string() + "' -c 64",
               "-c 64 needs at least 128");
  expect_error("perplexity " + model_arg() + " -f '" + f.string() + "' -c 64 --stride 65",
               "--stride 65");
}

}  // namespace
}  // namespace reprise
