// Tasks without a model: dataset loaders, users' JSONL files, the registry, the evaluator with a
// scripted LanguageModel, and the pairing rules of compare.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "eval/compare.h"
#include "eval/evaluator.h"
#include "eval/metrics.h"
#include "eval/py_random.h"
#include "eval/registry.h"
#include "eval/tasks/datasets.h"
#include "eval/tasks/jsonl_task.h"
#include "model/tokenizer.h"
#include "support/test_support.h"
#include "util/error.h"

namespace reprise::eval {
namespace {
namespace fs = std::filesystem;

fs::path data_dir() {
  return test::source_dir() / "data";
}

// A scratch directory removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/reprise-eval-XXXXXX";
    dir_ = mkdtemp(tmpl);
  }
  ~TempDir() { fs::remove_all(dir_); }
  fs::path write(const std::string& name, const std::string& text) const {
    std::ofstream(dir_ / name) << text;
    return dir_ / name;
  }
  const fs::path& path() const { return dir_; }

 private:
  fs::path dir_;
};

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// Answers from simple rules: log-likelihood = -(continuation length), generation echoes a fixed
// text, candidates favour the first.
class ScriptedLM final : public LanguageModel {
 public:
  const Tokenizer& tokenizer() const override { throw Error("no tokenizer"); }
  std::string description() const override { return "scripted"; }
  std::vector<LoglikelihoodResult> loglikelihood(std::span<const LoglikelihoodRequest> r) override {
    std::vector<LoglikelihoodResult> out;
    for (const auto& q : r) out.push_back({-static_cast<double>(q.continuation.size()), false, 1});
    calls++;
    return out;
  }
  std::vector<RollingResult> loglikelihood_rolling(std::span<const RollingRequest> r) override {
    std::vector<RollingResult> out;
    for (const auto& q : r) out.push_back({-2.0 * q.text.size(), static_cast<int>(q.text.size())});
    return out;
  }
  std::vector<GenerateResult> generate_until(std::span<const GenerateRequest> r) override {
    return std::vector<GenerateResult>(r.size(), GenerateResult{" 42 is it", 3});
  }
  std::vector<CandidateResult> candidate_probs(std::span<const CandidateRequest> r) override {
    std::vector<CandidateResult> out;
    for (const auto& q : r) {
      CandidateResult c;
      c.probs.assign(q.candidates.size(), 0.0);
      c.probs[7] = 1.0;
      out.push_back(c);
    }
    return out;
  }
  int calls = 0;
};

TEST(EvalDatasets, BundledDatasetsLoadWithTheirSizes) {
  EXPECT_EQ(load_arc(data_dir(), false)->size(), 2376u);
  EXPECT_EQ(load_arc(data_dir(), true)->size(), 1172u);
  EXPECT_EQ(load_boolq(data_dir())->size(), 3270u);
  EXPECT_EQ(load_winogrande(data_dir())->size(), 1267u);
  EXPECT_EQ(load_gsm8k(data_dir())->size(), 1319u);
  EXPECT_EQ(load_eq_bench(data_dir())->size(), 171u);
  size_t bbh = 0;
  for (const auto& t : bbh_task_names()) bbh += load_bbh(data_dir(), t, false)->size();
  EXPECT_EQ(bbh_task_names().size(), 27u);
  EXPECT_EQ(bbh, 6511u);
  EXPECT_EQ(load_bbh(data_dir(), "snarks", true)->size(), 178u);
  EXPECT_GT(load_tinystories(data_dir())->size(), 4000u);
  EXPECT_GT(load_wikitext2(data_dir())->size(), 2000u);
}

TEST(EvalDatasets, PromptsAndGoldAnswers) {
  auto arc = load_arc(data_dir(), false);
  auto reqs = arc->requests(0);
  ASSERT_EQ(reqs.size(), 4u);
  const auto& r0 = std::get<LoglikelihoodRequest>(reqs[0]);
  EXPECT_EQ(r0.context,
            "Question: Which statement best explains why photosynthesis is the foundation of "
            "most food webs?\nAnswer:");
  EXPECT_EQ(r0.continuation, " Sunlight is the source of energy for nearly all ecosystems.");
  EXPECT_EQ(arc->item_id(17), "arc_easy/17");

  auto gsm = load_gsm8k(data_dir());
  EXPECT_EQ(gsm->info().name, "gsm8k_zeroshot");
  const auto g = std::get<GenerateRequest>(gsm->requests(0)[0]);
  EXPECT_EQ(g.context.rfind("Question: Janet", 0), 0u);
  EXPECT_EQ(g.context.substr(g.context.size() - 8), "\nAnswer:");
  // lm-eval's gsm8k stop sequences.
  EXPECT_EQ(g.stop, (std::vector<std::string>{"Question:", "</s>", "<|im_end|>"}));
  EXPECT_EQ(g.max_tokens, 256);

  // lm-eval's boolq: "{{passage}}\nQuestion: {{question}}?\nAnswer:", no "Passage: " label, acc
  // only.
  auto boolq = load_boolq(data_dir());
  const auto bq = std::get<LoglikelihoodRequest>(boolq->requests(0)[1]);
  EXPECT_EQ(bq.context.rfind("All biomass goes through at least some of these steps", 0), 0u);
  EXPECT_EQ(bq.context.find("Passage:"), std::string::npos);
  EXPECT_EQ(bq.context.substr(bq.context.size() - 9), "?\nAnswer:");
  EXPECT_NE(bq.context.find("\nQuestion: "), std::string::npos);
  EXPECT_EQ(bq.continuation, " yes");
  ASSERT_EQ(boolq->info().metrics.size(), 1u);
  EXPECT_EQ(boolq->info().metrics[0].name, "acc");
  EXPECT_EQ(boolq->info().version, 2.0);

  auto wino = load_winogrande(data_dir());
  auto w = wino->requests(0);
  EXPECT_EQ(std::get<LoglikelihoodRequest>(w[1]).context,
            "Sarah was a much better surgeon than Maria so Maria");
  EXPECT_EQ(std::get<LoglikelihoodRequest>(w[1]).continuation, " always got the easier cases.");

  // The CoT prompt carries the three worked examples and ends the question with the CoT cue.
  auto cot = load_bbh(data_dir(), "logical_deduction_three_objects", true);
  EXPECT_EQ(cot->info().name, "bbh_cot_fewshot_logical_deduction_three_objects");
  EXPECT_EQ(cot->info().num_fewshot, 3);
  const auto c = std::get<GenerateRequest>(cot->requests(0)[0]);
  EXPECT_EQ(c.context.rfind("A logical deduction task", 0), 0u);
  size_t shots = 0;
  for (size_t at = 0;
       (at = c.context.find("\nA: Let's think step by step.", at)) != std::string::npos; ++at)
    ++shots;
  EXPECT_EQ(shots, 4u);  // three examples and the question
  EXPECT_EQ(c.context.find("canary"), std::string::npos);
  EXPECT_EQ(c.stop, (std::vector<std::string>{"</s>", "Q", "\n\n"}));
  EXPECT_EQ(c.max_tokens, 1024);
}

// lm-eval's bbh_cot_fewshot_<task> prompt, spelled out from its boolean_expressions.yaml (the
// description, then "Q: {input}\nA: Let's think step by step.\n" + " " + target + "\n\n" per
// example, then the question) and from sports_understanding, whose prompt file puts a space, not
// a newline, after the CoT cue.
TEST(EvalDatasets, BbhCotFewshotPromptIsLmEvals) {
  auto t = load_bbh(data_dir(), "boolean_expressions", true);
  const auto c = std::get<GenerateRequest>(t->requests(0)[0]).context;
  const std::string head =
      "Evaluate the result of a random Boolean expression.\n\nQ: not ( ( not not True ) ) is\nA: "
      "Let's think step by step.\n Remember that (i) expressions inside brackets";
  EXPECT_EQ(c.substr(0, head.size()), head);
  const std::string tail =
      "So the answer is True.\n\nQ: not ( True ) and ( True ) is\nA: Let's "
      "think step by step.\n";
  EXPECT_EQ(c.substr(c.size() - tail.size()), tail);
  auto sports = load_bbh(data_dir(), "sports_understanding", true);
  const auto s = std::get<GenerateRequest>(sports->requests(0)[0]).context;
  EXPECT_NE(s.find("\nA: Let's think step by step.\n Bam Adebayo is an American basketball "
                   "player."),
            std::string::npos);
  auto snarks = load_bbh(data_dir(), "snarks", true);
  const auto n = std::get<GenerateRequest>(snarks->requests(0)[0]).context;
  EXPECT_EQ(n.rfind("Determine which of two sentences is sarcastic.\n\nAccording to Cambridge", 0),
            0u);
}

// Python's random.Random(seed).sample, which lm-eval's few-shot sampler calls; the expected
// indices were printed by CPython 3.11.
TEST(EvalDatasets, PyRandomSamplesAsCPythonDoes) {
  PyRandom r(1234);
  EXPECT_EQ(r.sample(7473, 5), (std::vector<size_t>{6374, 3610, 957, 61, 742}));
  EXPECT_EQ(r.sample(7473, 5), (std::vector<size_t>{7462, 6610, 4769, 286, 5501}));
  EXPECT_EQ(r.sample(7473, 5), (std::vector<size_t>{5677, 687, 806, 6279, 2905}));
  PyRandom small(1234);  // a population within CPython's pool threshold
  EXPECT_EQ(small.sample(10, 5), (std::vector<size_t>{7, 1, 0, 9, 4}));
  EXPECT_EQ(small.sample(10, 5), (std::vector<size_t>{0, 1, 8, 6, 2}));
  PyRandom more(1234);
  EXPECT_EQ(more.sample(50, 8), (std::vector<size_t>{49, 28, 7, 0, 5, 37, 2, 42}));
  PyRandom bits(1234);
  EXPECT_EQ(bits.sample(100, 5), (std::vector<size_t>{99, 56, 14, 0, 11}));
  EXPECT_EQ(bits.getrandbits(32), 3912611952u);
  PyRandom wide((uint64_t{1} << 40) + 7);  // a seed of two 32-bit words
  EXPECT_EQ(wide.sample(1000, 3), (std::vector<size_t>{628, 765, 834}));
}

// lm-eval's 5-shot gsm8k with a train split in place: each item's examples are the train
// problems lm-eval's random.Random(1234) picks, drawn item after item, laid out as
// "Question: ...\nAnswer: <answer>\n\n".
TEST(EvalDatasets, Gsm8kFewshotDrawsLmEvalsExamples) {
  TempDir d;
  fs::create_directories(d.path() / "gsm8k");
  std::string train;
  for (int i = 0; i < 7473; ++i)
    train += fmt::format("{{\"question\": \"q{}\", \"answer\": \"a{}\\n#### {}\"}}\n", i, i, i);
  d.write("gsm8k/train.jsonl", train);
  d.write("gsm8k/test.jsonl",
          "{\"question\": \"t0\", \"answer\": \"x\\n#### 1\"}\n"
          "{\"question\": \"t1\", \"answer\": \"y\\n#### 2\"}\n");
  auto t = load_gsm8k(d.path(), true);
  EXPECT_EQ(t->info().name, "gsm8k");
  EXPECT_EQ(t->info().num_fewshot, 5);
  auto ctx = [&](size_t i) { return std::get<GenerateRequest>(t->requests(i)[0]).context; };
  std::string want;
  for (int k : {6374, 3610, 957, 61, 742})
    want += fmt::format("Question: q{}\nAnswer: a{}\n#### {}\n\n", k, k, k);
  EXPECT_EQ(ctx(0), want + "Question: t0\nAnswer:");
  EXPECT_EQ(ctx(1).rfind("Question: q7462\nAnswer: a7462\n#### 7462\n\nQuestion: q6610\n", 0), 0u);
}

// lm-eval's filters: gsm8k's strict-match and flexible-extract, bbh's get-answer, each then
// scored by exact_match with the task's ignore rules.
TEST(EvalDatasets, LmEvalFiltersAndExactMatch) {
  const std::string answer = "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 duck eggs a day.\n#### 1,018";
  auto score = [](const Task& task, const std::string& output, size_t item) {
    std::vector<Response> r = {GenerateResult{output, 1}};
    return task.score(item, r);
  };
  auto gsm = load_gsm8k(data_dir());
  const auto& gm = gsm->info().metrics;
  ASSERT_EQ(gm.size(), 2u);
  EXPECT_EQ(gm[0].id(), "exact_match,strict-match");
  EXPECT_EQ(gm[1].id(), "exact_match,flexible-extract");
  // Item 0's answer is 18. Strict needs "#### N"; flexible takes the last number-like run
  // ("$18." keeps its "$" and "."; exact_match's ignore rules drop them).
  auto s = score(*gsm, " She makes 9 * 2 = $18.\n#### 18", 0);
  EXPECT_EQ(s.values, (std::vector<double>{1.0, 1.0}));
  s = score(*gsm, " She makes 9 * 2 = $18.", 0);
  EXPECT_EQ(s.values, (std::vector<double>{0.0, 1.0}));
  EXPECT_EQ(s.details["extracted"]["exact_match,strict-match"], "[invalid]");
  EXPECT_EQ(s.details["extracted"]["exact_match,flexible-extract"], "$18.");
  s = score(*gsm, " 18 eggs, so 2 dollars each", 0);  // the last number wins
  EXPECT_EQ(s.values, (std::vector<double>{0.0, 0.0}));
  EXPECT_EQ(regex_filter("#### 1,018 and #### 7", Regex("#### (\\-?[0-9\\.\\,]+)")), "1,018");
  std::vector<Regex> ignore;
  for (const char* p : {",", "\\$", "(?s).*#### ", "\\.$"}) ignore.emplace_back(p);
  EXPECT_TRUE(exact_match("1,018", answer, ignore, true));
  EXPECT_FALSE(exact_match("1018.5", answer, ignore, true));

  // BBH CoT: the first "the answer is X" (up to the character before the line's end),
  // case-sensitive.
  auto bbh = load_bbh(data_dir(), "boolean_expressions", true);
  const std::string gold = bbh->score(0, std::vector<Response>{GenerateResult{"", 1}}).gold;
  s = score(*bbh, "A = True. So the answer is " + gold + ".", 0);
  EXPECT_EQ(s.values[0], 1.0);
  s = score(*bbh, "So the answer is " + gold + ". Then the answer is nothing.", 0);
  EXPECT_EQ(s.values[0], 0.0);  // the match runs to the line's last character but one
  s = score(*bbh, "So the answer is " + gold + ".\nSo the answer is no.", 0);
  EXPECT_EQ(s.values[0], 1.0);  // the first match
  std::string lower_gold = gold;
  for (char& ch : lower_gold) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  s = score(*bbh, "So the answer is " + lower_gold + ".", 0);
  EXPECT_EQ(s.values[0], 0.0);  // case-sensitive
  s = score(*bbh, "I cannot tell.", 0);
  EXPECT_EQ(s.prediction, "[invalid]");
}

TEST(EvalJsonl, AllKindsLoad) {
  TempDir d;
  auto mc = load_jsonl_task(
      d.write("mine.jsonl",
              "{\"context\": \"2+2=\", \"choices\": [\" 4\", \" 5\"], \"gold\": 0}\n\n"
              "{\"id\": \"q2\", \"context\": \"3+3=\", \"choices\": [\" 5\", \" 6\"], "
              "\"gold\": 1}\n"));
  EXPECT_EQ(mc->info().name, "mine");
  EXPECT_EQ(mc->size(), 2u);
  EXPECT_EQ(mc->item_id(0), "mine/1");
  EXPECT_EQ(mc->item_id(1), "q2");
  EXPECT_EQ(mc->info().metrics.size(), 2u);

  auto gen = load_jsonl_task(
      d.write("gen.jsonl",
              "{\"context\": \"Q: 6*7?\\nA:\", \"target\": \"42\", \"regex\": \"(\\\\d+)\"}\n"));
  ASSERT_EQ(gen->info().metrics.size(), 2u);  // integer targets add rys_score
  EXPECT_EQ(gen->info().metrics[1].name, "rys_score");
  auto text = load_jsonl_task(
      d.write("txt.jsonl", "{\"context\": \"Say hi:\", \"target\": \"hi\", \"stop\": [\"!\"]}\n"));
  EXPECT_EQ(text->info().metrics.size(), 1u);
  EXPECT_EQ(std::get<GenerateRequest>(text->requests(0)[0]).stop, (std::vector<std::string>{"!"}));

  EXPECT_EQ(load_jsonl_task(d.write("p.jsonl", "{\"text\": \"A passage.\"}\n"))->info().output_type,
            "loglikelihood_rolling");
  EXPECT_EQ(load_jsonl_task(d.write("dg.jsonl", "{\"context\": \"1+1 =\", \"digit\": 2}\n"))
                ->info()
                .output_type,
            "digit_expectation");
  EXPECT_EQ(load_jsonl_task(d.write("w.jsonl",
                                    "{\"contexts\": [\"a\", \"b\"], \"continuation\": "
                                    "\" c\", \"gold\": 1}\n"))
                ->info()
                .metrics.size(),
            1u);
}

TEST(EvalJsonl, MalformedLinesNameFileAndLine) {
  TempDir d;
  const std::string ok = "{\"context\": \"x\", \"choices\": [\" a\", \" b\"], \"gold\": 0}\n";
  auto bad = d.write("bad.jsonl", ok + ok + "{\"context\": \"x\", \"choices\": [\" a\"\n");
  EXPECT_NE(error_of([&] { load_jsonl_task(bad); }).find(bad.string() + ":3: not valid JSON"),
            std::string::npos);
  auto gold =
      d.write("gold.jsonl", ok + "{\"context\": \"x\", \"choices\": [\" a\"], \"gold\": 4}\n");
  EXPECT_NE(error_of([&] { load_jsonl_task(gold); }).find(":2: \"gold\" 4 is out of range"),
            std::string::npos);
  auto mixed = d.write("mixed.jsonl", ok + "{\"text\": \"t\"}\n");
  EXPECT_NE(error_of([&] {
              load_jsonl_task(mixed);
            }).find(":2: a passage item in a file of multiple-choice items"),
            std::string::npos);
  auto missing = d.write("missing.jsonl", "{\"choices\": [\" a\"], \"gold\": 0}\n");
  EXPECT_NE(error_of([&] { load_jsonl_task(missing); }).find(":1: needs \"context\""),
            std::string::npos);
  auto dup = d.write("dup.jsonl", "{\"id\": 1, \"text\": \"a\"}\n{\"id\": 1, \"text\": \"b\"}\n");
  EXPECT_NE(error_of([&] { load_jsonl_task(dup); }).find(":2: duplicate id '1'"),
            std::string::npos);
  auto empty = d.write("empty.jsonl", "\n");
  EXPECT_NE(error_of([&] { load_jsonl_task(empty); }).find("no items"), std::string::npos);
  EXPECT_NE(error_of([&] { load_jsonl_task(d.path() / "absent.jsonl"); }).find("cannot open"),
            std::string::npos);
}

TEST(EvalRegistry, NamesGroupsAndErrors) {
  EXPECT_EQ(resolve_task_names("arc_easy, boolq,arc_easy"),
            (std::vector<std::string>{"arc_easy", "boolq"}));
  EXPECT_EQ(resolve_task_names("bbh").size(), 27u);
  EXPECT_EQ(resolve_task_names("bbh").front(), "bbh_cot_fewshot_boolean_expressions");
  EXPECT_EQ(resolve_task_names("bbh_zeroshot_reprise").front(), "bbh_boolean_expressions");
  const auto groups = lm_eval_groups("arc_easy, bbh,probes");
  ASSERT_EQ(groups.size(), 1u);  // reprise's own groups have no lm-eval group row
  EXPECT_EQ(groups[0].name, "bbh");
  EXPECT_EQ(groups[0].tasks, resolve_task_names("bbh"));
  EXPECT_EQ(groups[0].metrics, std::vector<std::string>{"exact_match,get-answer"});
  // lm-eval's gsm8k is 5-shot from the train split, which the bundled data lacks: the error
  // names the file and the zero-shot task.
  TaskOptions bundled;
  bundled.data_dir = data_dir();
  const std::string g = error_of([&] { make_task("gsm8k", bundled); });
  EXPECT_NE(g.find("gsm8k/train.jsonl: not found"), std::string::npos) << g;
  EXPECT_NE(g.find("gsm8k_zeroshot"), std::string::npos) << g;
  EXPECT_EQ(resolve_task_names("probe_math,probe_logic:7"),
            (std::vector<std::string>{"probe_math:4", "probe_logic:7"}));
  EXPECT_EQ(resolve_task_names("probes").size(), 3u);
  const std::string e = error_of([] { resolve_task_names("arc_easy,hellaswag"); });
  EXPECT_NE(e.find("unknown task 'hellaswag'"), std::string::npos) << e;
  for (const char* known :
       {"arc_challenge", "gsm8k_zeroshot", "winogrande", "eq_bench", "wikitext2", "tinystories",
        "probe_chain", "word_sorting", "bbh_cot_fewshot_<task>"})
    EXPECT_NE(e.find(known), std::string::npos) << known;
  EXPECT_NE(error_of([] { resolve_task_names("probe_logic:9"); }).find("3-7"), std::string::npos);
  EXPECT_NE(error_of([] { resolve_task_names("arc_easy,,boolq"); }).find("empty task name"),
            std::string::npos);
  // Every listed non-group task builds.
  TaskOptions o;
  o.data_dir = data_dir();
  for (const auto& n : resolve_task_names("tinystories,wikitext2,arc_easy,arc_challenge,"
                                          "winogrande,boolq,gsm8k_zeroshot,eq_bench,bbh,"
                                          "bbh_zeroshot_reprise,probes"))
    EXPECT_GT(make_task(n, o)->size(), 0u) << n;
}

TEST(EvalEvaluator, RecordsEveryItemAndSummarises) {
  TempDir d;
  // ScriptedLM scores a continuation -(its length): " 4" beats " 55", " 66" ties " 77" (first).
  auto task = load_jsonl_task(
      d.write("t.jsonl",
              "{\"context\": \"a\", \"choices\": [\" 4\", \" 55\"], \"gold\": 0}\n"
              "{\"context\": \"b\", \"choices\": [\" 55\", \" 6\"], \"gold\": 0}\n"
              "{\"context\": \"c\", \"choices\": [\" 66\", \" 77\"], \"gold\": 1}\n"));
  ScriptedLM lm;
  EvalOptions o;
  o.batch_items = 2;
  size_t last = 0;
  o.progress = [&](size_t done) { last = done; };
  const TaskResult r = evaluate(*task, lm, o);
  EXPECT_EQ(lm.calls, 2);  // two batches
  EXPECT_EQ(last, 3u);
  ASSERT_EQ(r.items.size(), 3u);
  EXPECT_EQ(r.items[0].values[0], 1.0);
  EXPECT_EQ(r.items[1].values[0], 0.0);
  EXPECT_EQ(r.items[2].values[0], 0.0);
  EXPECT_EQ(r.items[1].prediction, " 6");
  EXPECT_EQ(r.items[1].gold, " 55");
  // acc: values 1, 0, 0 -> mean 1/3, stderr sqrt(1/3 / 3).
  EXPECT_NEAR(r.metrics[0].value, 1.0 / 3, 1e-12);
  EXPECT_NEAR(r.metrics[0].std_error, std::sqrt((1.0 / 3) / 3), 1e-12);
  // Limits take the first items; item hashes identify the items.
  o.limit = 2;
  const TaskResult r2 = evaluate(*task, lm, o);
  EXPECT_EQ(r2.items.size(), 2u);
  EXPECT_EQ(r2.items[1].doc_hash, r.items[1].doc_hash);
  EXPECT_NE(r.items[0].doc_hash, r.items[1].doc_hash);

  RunInfo run;
  run.config = {{"path", "0..4"}};
  run.model_name = "m";
  const auto j = results_json(std::vector<TaskResult>{r}, run);
  EXPECT_NEAR(j["results"]["t"]["acc,none"].get<double>(), 1.0 / 3, 1e-12);
  EXPECT_NEAR(j["results"]["t"]["acc_stderr,none"].get<double>(), std::sqrt((1.0 / 3) / 3), 1e-12);
  EXPECT_FALSE(j["results"]["t"].contains("n"));
  // Every top-level key of lm-eval's results files.
  for (const char* key : {"results", "group_subtasks", "configs", "versions", "n-shot",
                          "higher_is_better", "n-samples", "config", "model_name", "date",
                          "total_evaluation_time_seconds", "chat_template"})
    EXPECT_TRUE(j.contains(key)) << key;
  EXPECT_EQ(j["versions"]["t"], 1.0);
  EXPECT_EQ(j["n-shot"]["t"], 0);
  EXPECT_TRUE(j["total_evaluation_time_seconds"].is_string());
  EXPECT_TRUE(j["chat_template"].is_null());
  EXPECT_EQ(j["n-samples"]["t"]["original"], 3);
  EXPECT_EQ(j["samples"]["t"].size(), 3u);
  EXPECT_EQ(j["metric_kinds"]["t"]["acc"], "binary");
  EXPECT_NE(summary_table(std::vector<TaskResult>{r}).find("| t    | acc_norm |"),
            std::string::npos);
}

// A group's row in lm-eval's results shape: the size-weighted mean and pooled standard error of
// its subtasks; the expected figures were printed by lm-eval 0.4.13's aggregate_subtask_metrics
// and pooled_sample_stderr for means 0.75 and 1/3, standard errors 0.25 and 1/3, sizes 4 and 3.
TEST(EvalEvaluator, GroupRowsAggregateAsLmEvalDoes) {
  const MetricInfo em{"exact_match", MetricKind::Binary, true, "get-answer"};
  auto task = [&](const std::string& name, double mean, double se, size_t n) {
    TaskResult r;
    r.info.name = name;
    r.info.metrics = {em};
    r.metrics = {{em, mean, se, n}};
    return r;
  };
  const std::vector<TaskResult> rs = {task("a", 0.75, 0.25, 4), task("b", 1.0 / 3, 1.0 / 3, 3),
                                      task("c", 0.5, 0.5, 2)};
  RunInfo run;
  run.groups = {TaskGroup{"g", {"a", "b", "x"}, {em.id()}, 3.0}};
  const auto j = results_json(rs, run);
  EXPECT_NEAR(j["results"]["g"]["exact_match,get-answer"].get<double>(), 0.5714285714285714, 1e-15);
  EXPECT_NEAR(j["results"]["g"]["exact_match_stderr,get-answer"].get<double>(), 0.20118695404073914,
              1e-15);
  EXPECT_EQ(j["groups"]["g"], j["results"]["g"]);
  EXPECT_EQ(j["group_subtasks"]["g"], nlohmann::ordered_json::array({"a", "b"}));
  EXPECT_EQ(j["versions"]["g"], 3.0);
  EXPECT_EQ(j["higher_is_better"]["g"]["exact_match"], true);
}

TEST(EvalEvaluator, GenerationDigitAndPassageScoring) {
  TempDir d;
  ScriptedLM lm;  // generates " 42 is it", puts all digit mass on 7, rolling -2 per character
  auto gen = load_jsonl_task(
      d.write("g.jsonl",
              "{\"context\": \"q\", \"target\": \"42\", \"regex\": \"(\\\\d+)\"}\n"
              "{\"context\": \"q\", \"target\": \"40\", \"regex\": \"(\\\\d+)\"}\n"));
  const TaskResult g = evaluate(*gen, lm);
  EXPECT_EQ(g.items[0].values, (std::vector<double>{1.0, 1.0}));
  EXPECT_EQ(g.items[1].values[0], 0.0);
  EXPECT_NEAR(g.items[1].values[1], 1.0 - 2.0 / 42, 1e-12);  // RYS: |40 - 42| / 42
  auto dig = load_jsonl_task(d.write("d.jsonl", "{\"context\": \"x\", \"digit\": 4}\n"));
  const TaskResult dg = evaluate(*dig, lm);
  EXPECT_NEAR(dg.items[0].values[0], 1.0 - 3.0 / 9, 1e-12);
  auto pas = load_jsonl_task(d.write("p.jsonl", "{\"text\": \"abcd\"}\n{\"text\": \"ab\"}\n"));
  const TaskResult p = evaluate(*pas, lm);
  EXPECT_EQ(p.items[0].values[0], -2.0);
  ASSERT_FALSE(p.aggregates.empty());
  EXPECT_EQ(p.aggregates[0].first, "perplexity");
  EXPECT_NEAR(p.aggregates[0].second, std::exp(2.0), 1e-12);
}

TEST(EvalCompare, PairsItemsAndRefusesDifferentItems) {
  TempDir d;
  ScriptedLM lm;
  auto task = load_jsonl_task(
      d.write("t.jsonl",
              "{\"context\": \"a\", \"choices\": [\" 4\", \" 55\"], \"gold\": 0}\n"
              "{\"context\": \"b\", \"choices\": [\" 55\", \" 6\"], \"gold\": 0}\n"));
  const TaskResult r = evaluate(*task, lm);
  auto write_results = [&](const std::string& name, const std::vector<TaskResult>& rs) {
    RunInfo run;
    run.config = {{"path", "0..4"}};
    return d.write(name, results_json(rs, run).dump());
  };
  const RunItems a = load_run(write_results("a.json", {r}));
  EXPECT_EQ(a.label, "0..4");
  // A samples log of the same run pairs with the results file.
  std::string lines;
  for (size_t k = 0; k < r.items.size(); ++k)
    for (const auto& line : sample_lines(r, r.items[k], k, "0..3,1..4"))
      lines += line.dump() + "\n";
  const RunItems b = load_run(d.write("b.jsonl", lines));
  EXPECT_EQ(b.label, "0..3,1..4");
  const Comparison c = compare_runs(a, b);
  ASSERT_EQ(c.rows.size(), 2u);
  EXPECT_EQ(c.rows[0].diff, 0.0);
  EXPECT_EQ(c.rows[0].p, 1.0);
  ASSERT_EQ(c.verdicts.size(), 1u);
  EXPECT_NE(c.verdicts[0].find("t: no difference on acc"), std::string::npos) << c.verdicts[0];

  // Fewer items, another task, an altered item: refused.
  EvalOptions one;
  one.limit = 1;
  const RunItems shorter = load_run(write_results("s.json", {evaluate(*task, lm, one)}));
  EXPECT_NE(error_of([&] { compare_runs(a, shorter); }).find("cannot compare task t"),
            std::string::npos);
  auto other = load_jsonl_task(
      d.write("u.jsonl", "{\"context\": \"a\", \"choices\": [\" 4\", \" 55\"], \"gold\": 0}\n"));
  const RunItems u = load_run(write_results("u.json", {evaluate(*other, lm)}));
  EXPECT_NE(error_of([&] { compare_runs(a, u); }).find("cannot compare runs of different tasks"),
            std::string::npos);
  auto changed = load_jsonl_task(
      d.write("t.jsonl",
              "{\"context\": \"a\", \"choices\": [\" 4\", \" 55\"], \"gold\": 1}\n"
              "{\"context\": \"b\", \"choices\": [\" 55\", \" 6\"], \"gold\": 0}\n"));
  const RunItems ch = load_run(write_results("c.json", {evaluate(*changed, lm)}));
  EXPECT_NE(error_of([&] { compare_runs(a, ch); }).find("item 't/1' differs"), std::string::npos);
  EXPECT_NE(error_of([&] {
              load_run(d.write("x.jsonl", "{\"task\": \"t\"}\n"));
            }).find("x.jsonl:1: needs \"id\""),
            std::string::npos);
  EXPECT_NE(error_of([&] {
              load_run(d.write("y.jsonl", "{\"task\": \"t\", \"id\": \"t/0\", \"metrics\": {}}\n"));
            }).find("y.jsonl:1: needs \"metric_kinds\""),
            std::string::npos);
}

TEST(EvalCompare, StatisticsOnAKnownTable) {
  // 10 items: B fixes 8 that A missed and breaks 2 -> McNemar p = 0.109375 (hand value).
  RunItems a, b;
  a.source = "a";
  b.source = "b";
  RunTask ta, tb;
  ta.metrics = tb.metrics = {{"acc", MetricKind::Binary, true}};
  for (int i = 0; i < 14; ++i) {
    const std::string id = std::to_string(i);
    for (RunTask* t : {&ta, &tb}) {
      t->ids.push_back(id);
      t->hashes.push_back("h" + id);
    }
    const bool a_right = i < 2 || i >= 10, b_right = i >= 2;
    ta.values.push_back({a_right ? 1.0 : 0.0});
    tb.values.push_back({b_right ? 1.0 : 0.0});
  }
  a.tasks["x"] = ta;
  b.tasks["x"] = tb;
  a.task_order = b.task_order = {"x"};
  const Comparison c = compare_runs(a, b);
  ASSERT_EQ(c.rows.size(), 1u);
  EXPECT_EQ(c.rows[0].a_only, 2);
  EXPECT_EQ(c.rows[0].b_only, 8);
  EXPECT_NEAR(c.rows[0].p, 0.109375, 1e-15);
  EXPECT_NEAR(c.rows[0].diff, 6.0 / 14, 1e-15);
  EXPECT_NE(c.verdicts[0].find("no significant difference"), std::string::npos);
}

}  // namespace
}  // namespace reprise::eval
