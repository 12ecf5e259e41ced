// BIG-Bench Hard as lm-evaluation-harness runs it: tests/data/bbh_lmeval/expected.json holds what
// lm-eval 0.4.13 itself rendered and scored (its bbh_zeroshot_<task> and bbh_fewshot_<task> built
// from its YAMLs over data/bbh, crafted responses through its own filters and exact_match; see the
// README there). reprise's tasks must render the same prompts byte for byte and extract and score
// every response the same.
#include <gtest/gtest.h>

#include <fmt/format.h>

#include <nlohmann/json.hpp>

#include <fstream>
#include <map>
#include <set>

#include "eval/io.h"
#include "eval/regex.h"
#include "eval/registry.h"
#include "eval/tasks/bbh.h"
#include "support/test_support.h"
#include "util/error.h"

namespace reprise::eval {
namespace {
namespace fs = std::filesystem;

const nlohmann::json& expected() {
  static const nlohmann::json j =
      read_json_file(test::source_dir() / "tests" / "data" / "bbh_lmeval" / "expected.json");
  return j;
}

// Each task loaded once for all the tests here (54 tasks of up to 250 items).
const Task& task_named(const std::string& name) {
  static std::map<std::string, std::unique_ptr<Task>> tasks;
  auto& t = tasks[name];
  if (!t) {
    TaskOptions o;
    o.data_dir = test::source_dir() / "data";
    t = make_task(name, o);
  }
  return *t;
}

// lm-eval's results key "<metric>,<filter>" as reprise's MetricInfo::id() spells it.
std::string metric_id(const std::string& metric, const std::string& filter) {
  return filter == "none" ? metric : metric + "," + filter;
}

TEST(BbhLmEval, ExpectedFileCoversBothVariantsOfEveryTask) {
  const auto& tasks = expected().at("tasks");
  EXPECT_EQ(expected().at("lm_eval").get<std::string>(), "0.4.13");
  for (const auto& t : bbh_task_names()) {
    EXPECT_TRUE(tasks.contains("bbh_zeroshot_" + t)) << t;
    EXPECT_TRUE(tasks.contains("bbh_fewshot_" + t)) << t;
  }
  EXPECT_EQ(tasks.size(), 2 * bbh_task_names().size());
}

TEST(BbhLmEval, TaskSettingsAreLmEvals) {
  for (const auto& [name, e] : expected().at("tasks").items()) {
    SCOPED_TRACE(name);
    const Task& task = task_named(name);
    const TaskInfo& info = task.info();
    EXPECT_EQ(info.version, e.at("version").get<double>());
    EXPECT_EQ(info.num_fewshot, e.at("num_fewshot").get<int>());
    EXPECT_EQ(task.size(), e.at("n_docs").get<size_t>());
    std::set<std::string> ids, want;
    for (const auto& m : info.metrics) ids.insert(m.id());
    for (const auto& f : e.at("filters")) want.insert(metric_id("exact_match", f));
    EXPECT_EQ(ids, want);
    const auto r = std::get<GenerateRequest>(task.requests(0)[0]);
    EXPECT_EQ(r.stop, e.at("until").get<std::vector<std::string>>());
    EXPECT_EQ(r.max_tokens, 256);  // lm-eval's default max_gen_toks
  }
}

TEST(BbhLmEval, PromptsAreLmEvalsByteForByte) {
  size_t compared = 0;
  for (const auto& [name, e] : expected().at("tasks").items()) {
    const Task& task = task_named(name);
    for (const auto& d : e.at("docs")) {
      const size_t i = d.at("index").get<size_t>();
      const auto r = std::get<GenerateRequest>(task.requests(i)[0]);
      EXPECT_EQ(r.context, d.at("context").get<std::string>()) << name << " item " << i;
      ++compared;
    }
  }
  EXPECT_GE(compared, 3 * 54u);
}

// Every crafted response: each filter's output and each metric's score, as lm-eval gave them.
// Where lm-eval's number-word parser raised (lm-eval stops there), reprise falls back to
// "[invalid]" and scores 0.
TEST(BbhLmEval, FiltersAndExactMatchAreLmEvals) {
  size_t compared = 0, mismatches = 0;
  for (const auto& [name, e] : expected().at("tasks").items()) {
    const Task& task = task_named(name);
    for (const auto& d : e.at("docs")) {
      const size_t i = d.at("index").get<size_t>();
      for (const auto& r : d.at("responses")) {
        const std::string text = r.at("response");
        const std::vector<Response> resp = {GenerateResult{text, 0}};
        const ItemScore s = task.score(i, resp);
        EXPECT_EQ(s.gold, d.at("target").get<std::string>());
        for (size_t k = 0; k < task.info().metrics.size(); ++k) {
          const MetricInfo& m = task.info().metrics[k];
          const auto& want_filtered = r.at("filtered").at(m.filter);
          const std::string want = want_filtered.is_null() ? "[invalid]" : want_filtered;
          const std::string key = m.name + "," + m.filter;
          const double want_score =
              r.at("scores").contains(key) ? r.at("scores").at(key).get<double>() : 0.0;
          if (want_filtered.is_null()) {
            EXPECT_TRUE(r.contains("error"));
          }
          const std::string got = s.details.at("extracted").at(m.id());
          if (got != want || s.values[k] != want_score) {
            if (++mismatches <= 30)
              ADD_FAILURE() << fmt::format(
                  "{} item {} response {}: {} extracted {} (lm-eval {}), score {} (lm-eval {})",
                  name, i, nlohmann::json(text).dump(), m.id(), nlohmann::json(got).dump(),
                  nlohmann::json(want).dump(), s.values[k], want_score);
          }
          ++compared;
        }
      }
    }
  }
  EXPECT_EQ(mismatches, 0u);
  EXPECT_GE(compared, 4000u);
}

TEST(BbhLmEval, WordToNumberIsWord2Numbers) {
  size_t n = 0;
  for (const auto& w : expected().at("word_numbers")) {
    const std::string words = w.at("words");
    const auto got = words_to_number(words);
    if (w.at("value").is_null()) {
      EXPECT_FALSE(got.has_value()) << words << " gave " << got.value_or(0);
    } else {
      ASSERT_TRUE(got.has_value()) << words;
      EXPECT_EQ(*got, w.at("value").get<int64_t>()) << words;
    }
    ++n;
  }
  EXPECT_GE(n, 15u);
}

TEST(BbhLmEval, GroupsAreLmEvals) {
  for (const auto& [name, g] : expected().at("groups").items()) {
    SCOPED_TRACE(name);
    const auto groups = lm_eval_groups(name);
    ASSERT_EQ(groups.size(), 1u);
    EXPECT_EQ(groups[0].version, g.at("version").get<double>());
    EXPECT_EQ(groups[0].tasks, g.at("tasks").get<std::vector<std::string>>());
    std::vector<std::string> want;
    for (const auto& m : g.at("metrics")) {
      const std::string s = m;
      want.push_back(metric_id(s.substr(0, s.find(',')), s.substr(s.find(',') + 1)));
    }
    EXPECT_EQ(groups[0].metrics, want);
    EXPECT_EQ(resolve_task_names(name), groups[0].tasks);
  }
}

// A prompt file whose example has no final "So the answer is X." cannot give the few-shot
// answers: the error names the file and the example.
TEST(BbhLmEval, PromptWithoutAnAnswerIsAnError) {
  const fs::path dir = test::scratch("bbh_no_answer");
  fs::create_directories(dir / "bbh" / "bbh");
  fs::create_directories(dir / "bbh" / "cot-prompts");
  std::ofstream(dir / "bbh" / "bbh" / "navigate.json")
      << R"({"examples": [{"input": "Take 1 step.", "target": "No"}]})";
  const fs::path prompt = dir / "bbh" / "cot-prompts" / "navigate.txt";
  std::ofstream(prompt) << "canary\n-----\nSay whether you return.\n\nQ: Take 1 step.\nA: Let's "
                           "think step by step.\nWe move once. So the answer is No.\n\nQ: Stay."
                           "\nA: Let's think step by step.\nWe do not move.";
  try {
    load_bbh(dir, "navigate", BbhVariant::FewShot);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              prompt.string() +
                  ": example 2 has no \"A: Let's think step by step.\" answer ending \"So the "
                  "answer is X.\"");
  }
}

// Python's str.lower() on what the multiple-choice filter folds: accented capitals (a movie title
// in capitals must still match its option), non-Latin scripts, and the characters where PCRE2's
// tables and Python differ (expected values printed by CPython 3.11).
TEST(BbhLmEval, UnicodeLowerIsPythons) {
  EXPECT_EQ(unicode_lower("POKÉMON HEROES"), "pokémon heroes");
  EXPECT_EQ(unicode_lower("LES MISÉRABLES, LE MAÎTRE D'ÉCOLE"),
            "les misérables, le maître d'école");
  EXPECT_EQ(unicode_lower("ΣΟΦΊΑ Дом"), "σοφία дом");  // no final-sigma rule in simple mapping
  EXPECT_EQ(unicode_lower("ǅ Ⅻ Ⓐ Ⓩ Ⅰ"), "ǆ ⅻ ⓐ ⓩ ⅰ");
  EXPECT_EQ(unicode_lower("İSTANBUL"), "i\xCC\x87stanbul");
  EXPECT_EQ(unicode_lower(""), "");
  EXPECT_EQ(unicode_lower("A\xff"
                          "B"),
            "a\xff"
            "b");  // invalid bytes kept, the rest lowered
  // Through the filter: an option written in capitals with its accent.
  EXPECT_EQ(bbh_flexible_extract("movie_recommendation",
                                 "Find a movie similar to X:\nOptions:\n(A) Pokémon Heroes\n(B) "
                                 "Heat",
                                 "I would watch POKÉMON HEROES"),
            "(A)");
}

}  // namespace
}  // namespace reprise::eval
