#include "eval/tasks/datasets.h"

#include <fmt/format.h>

#include <algorithm>
#include <sstream>

#include "eval/io.h"
#include "eval/metrics.h"
#include "eval/tasks/eq_bench.h"
#include "eval/tasks/generation.h"
#include "eval/tasks/multiple_choice.h"
#include "eval/tasks/passages.h"
#include "util/error.h"

namespace reprise::eval {
namespace fs = std::filesystem;
namespace {

std::string where(const fs::path& file, int line) {
  return fmt::format("{}:{}", file.string(), line);
}

std::string trim(const std::string& s) {
  const size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

size_t checked_gold(const nlohmann::json& j, size_t n_choices, const std::string& at) {
  const int64_t g = json_int(j, "gold", at);
  if (g < 0 || static_cast<size_t>(g) >= n_choices)
    throw Error(fmt::format("{}: \"gold\" {} is out of range ({} choices)", at, g, n_choices));
  return static_cast<size_t>(g);
}

// llm-foundry's {"query", "choices", "gold"} records; the answer follows "\nAnswer:".
std::vector<ChoiceItem> query_choice_items(const fs::path& file, const std::string& task) {
  std::vector<ChoiceItem> items;
  for_each_jsonl(file, [&](const nlohmann::json& j, int line) {
    const std::string at = where(file, line);
    ChoiceItem it;
    it.id = fmt::format("{}/{}", task, items.size());
    it.context = json_string(j, "query", at) + "\nAnswer:";
    it.choices = json_strings(j, "choices", at);
    it.gold = checked_gold(j, it.choices.size(), at);
    items.push_back(std::move(it));
  });
  return items;
}

std::vector<Passage> paragraphs(const fs::path& file, const std::string& task, bool skip_headings) {
  std::istringstream in(read_text_file(file));
  std::vector<Passage> out;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    const std::string t = trim(line);
    if (t.empty()) continue;
    // WikiText headings are " = Title = ", " = = Section = = ", ...
    if (skip_headings && t.front() == '=' && t.back() == '=') continue;
    out.push_back({fmt::format("{}/{}", task, n), t});
  }
  if (out.empty()) throw Error(fmt::format("{}: no passages", file.string()));
  return out;
}

// Cluster ids of paragraphs: a paragraph beginning with `story_start` opens a new story, and the
// paragraphs of one story share an id (TinyStories marks no story boundaries, but its stories
// open with "Once upon a time").
std::vector<std::string> story_clusters(const std::vector<Passage>& paragraphs,
                                        const std::string& task, const std::string& story_start) {
  std::vector<std::string> out;
  int story = 0;
  for (const auto& p : paragraphs) {
    if (p.text.rfind(story_start, 0) == 0 && !out.empty()) ++story;
    out.push_back(fmt::format("{}/story{}", task, story));
  }
  return out;
}

std::vector<std::string> words(const std::string& s) {
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

// WinoGrande twins: two sentences a trigger word or two apart, next to each other in the file.
// An item and the one before it are twins when they offer the same options, or when their
// sentences (first option + continuation) have as many words and differ in at most two.
std::vector<std::string> winogrande_twins(const std::vector<ChoiceItem>& items) {
  std::vector<std::string> out;
  for (size_t i = 0; i < items.size(); ++i) {
    bool twin = false;
    if (i > 0 && out[i - 1] == items[i - 1].id) {  // the previous item has no twin yet
      const auto& a = items[i - 1];
      const auto& b = items[i];
      const auto wa = words(a.choices.at(0) + " " + a.continuation);
      const auto wb = words(b.choices.at(0) + " " + b.continuation);
      size_t differ = 0;
      for (size_t k = 0; k < std::min(wa.size(), wb.size()); ++k) differ += wa[k] != wb[k];
      twin = a.choices == b.choices || (wa.size() == wb.size() && differ <= 2);
    }
    out.push_back(twin ? out[i - 1] : items[i].id);
  }
  return out;
}

}  // namespace

const std::vector<std::string>& bbh_task_names() {
  static const std::vector<std::string> names = {
      "boolean_expressions",
      "causal_judgement",
      "date_understanding",
      "disambiguation_qa",
      "dyck_languages",
      "formal_fallacies",
      "geometric_shapes",
      "hyperbaton",
      "logical_deduction_five_objects",
      "logical_deduction_seven_objects",
      "logical_deduction_three_objects",
      "movie_recommendation",
      "multistep_arithmetic_two",
      "navigate",
      "object_counting",
      "penguins_in_a_table",
      "reasoning_about_colored_objects",
      "ruin_names",
      "salient_translation_error_detection",
      "snarks",
      "sports_understanding",
      "temporal_sequences",
      "tracking_shuffled_objects_five_objects",
      "tracking_shuffled_objects_seven_objects",
      "tracking_shuffled_objects_three_objects",
      "web_of_lies",
      "word_sorting",
  };
  return names;
}

std::unique_ptr<Task> load_arc(const fs::path& data_dir, bool challenge) {
  const std::string name = challenge ? "arc_challenge" : "arc_easy";
  auto items = query_choice_items(data_dir / "arc" / (name + ".jsonl"), name);
  return std::make_unique<MultipleChoiceTask>(
      name, challenge ? "ARC-Challenge test, multiple choice" : "ARC-Easy test, multiple choice",
      std::move(items));
}

std::unique_ptr<Task> load_boolq(const fs::path& data_dir) {
  auto items = query_choice_items(data_dir / "boolq" / "boolq.jsonl", "boolq");
  // Several questions ask about one passage: the passage is the unit they share.
  std::vector<std::string> passages;
  for (const auto& it : items)
    passages.push_back(it.context.substr(0, it.context.find("\nQuestion:")));
  auto task = std::make_unique<MultipleChoiceTask>("boolq", "BoolQ dev, yes/no by log-likelihood",
                                                   std::move(items));
  task->set_clusters(std::move(passages));
  return task;
}

std::unique_ptr<Task> load_winogrande(const fs::path& data_dir) {
  const fs::path file = data_dir / "winogrande" / "winogrande.jsonl";
  std::vector<ChoiceItem> items;
  for_each_jsonl(file, [&](const nlohmann::json& j, int line) {
    const std::string at = where(file, line);
    ChoiceItem it;
    it.id = fmt::format("winogrande/{}", items.size());
    it.choices = json_strings(j, "context_options", at);
    it.continuation = json_string(j, "continuation", at);
    it.gold = checked_gold(j, it.choices.size(), at);
    items.push_back(std::move(it));
  });
  auto twins = winogrande_twins(items);
  auto task = std::make_unique<MultipleChoiceTask>(
      "winogrande", "WinoGrande dev, partial scoring of the sentence's ending", std::move(items),
      " ", true);
  task->set_clusters(std::move(twins));
  return task;
}

std::vector<MetricInfo> gsm8k_metrics() {
  return {{"exact_match_flex", MetricKind::Binary, true},
          {"exact_match_strict", MetricKind::Binary, true}};
}

std::unique_ptr<Task> load_gsm8k(const fs::path& data_dir) {
  const fs::path file = data_dir / "gsm8k" / "test.jsonl";
  std::vector<GenItem> items;
  for_each_jsonl(file, [&](const nlohmann::json& j, int line) {
    const std::string at = where(file, line);
    GenItem it;
    it.id = fmt::format("gsm8k/{}", items.size());
    it.context = "Question: " + json_string(j, "question", at) + "\nAnswer:";
    const std::string answer = json_string(j, "answer", at);
    if (answer.find("####") == std::string::npos)
      throw Error(fmt::format("{}: \"answer\" has no '####' line", at));
    it.gold = gsm8k_gold(answer);
    items.push_back(std::move(it));
  });
  auto same = [](const std::string& e, const std::string& gold) { return !e.empty() && e == gold; };
  std::vector<GenMetric> metrics = {
      exact_match_metric(
          "exact_match_flex",
          [](const std::string& out) { return gsm8k_flexible(out).value_or(""); }, same),
      exact_match_metric(
          "exact_match_strict",
          [](const std::string& out) { return gsm8k_strict(out).value_or(""); }, same),
  };
  return std::make_unique<GenerationTask>(
      "gsm8k", "GSM8K test, zero-shot generation; last number (flex) or '#### N' (strict)",
      std::move(items), std::vector<std::string>{"Question:", "\n\n\n"}, 256, std::move(metrics));
}

std::vector<MetricInfo> bbh_metrics() {
  return {{"exact_match", MetricKind::Binary, true}};
}

std::unique_ptr<Task> load_bbh(const fs::path& data_dir, const std::string& task, bool cot) {
  const fs::path data = data_dir / "bbh" / "bbh" / (task + ".json");
  const fs::path prompt_file = data_dir / "bbh" / "cot-prompts" / (task + ".txt");
  const std::string name = (cot ? "bbh_cot_" : "bbh_") + task;
  // The prompt file is a canary line, "-----", a one-line task description, then three worked
  // examples separated by blank lines.
  const std::string prompt = read_text_file(prompt_file);
  const size_t rule = prompt.find("-----\n");
  if (rule == std::string::npos)
    throw Error(fmt::format("{}: no '-----' line before the prompt", prompt_file.string()));
  const std::string body = trim(prompt.substr(rule + 6));
  const std::string description = body.substr(0, body.find('\n'));
  const std::string prefix = cot ? body : description;

  const nlohmann::json doc = read_json_file(data);
  if (!doc.contains("examples") || !doc["examples"].is_array())
    throw Error(fmt::format("{}: needs \"examples\" (a list)", data.string()));
  std::vector<GenItem> items;
  for (const auto& ex : doc["examples"]) {
    const std::string at = fmt::format("{}: example {}", data.string(), items.size());
    GenItem it;
    it.id = fmt::format("{}/{}", name, items.size());
    it.context = prefix + "\n\nQ: " + json_string(ex, "input", at) +
                 (cot ? "\nA: Let's think step by step." : "\nA:");
    it.gold = json_string(ex, "target", at);
    items.push_back(std::move(it));
  }
  GenMetric em;
  em.info = bbh_metrics()[0];
  em.score = [cot](const std::string& out, const GenItem& item, std::string& extracted) {
    const AnswerFormat f = answer_format_of(item.gold);
    if (cot) {
      auto final = cot_final_answer(out);
      extracted = final ? extract_answer(*final, f) : "";
    } else {
      extracted = extract_answer(out, f);
    }
    return answer_matches(extracted, item.gold, f) ? 1.0 : 0.0;
  };
  const std::string what = cot ? "three-shot chain of thought" : "zero-shot";
  return std::make_unique<GenerationTask>(
      name, fmt::format("BIG-Bench Hard {}, {}", task, what), std::move(items),
      cot ? std::vector<std::string>{"\n\nQ:", "\nQ:"} : std::vector<std::string>{"\n\n", "\nQ:"},
      cot ? 384 : 128, std::vector<GenMetric>{em});
}

std::unique_ptr<Task> load_eq_bench(const fs::path& data_dir) {
  const fs::path file = data_dir / "eq_bench" / "eq_bench_v2_questions_171.json";
  const nlohmann::json doc = read_json_file(file);
  if (!doc.is_object())
    throw Error(fmt::format("{}: expected an object of questions", file.string()));
  // Keys are "1".."171"; order by number so ids follow the benchmark's numbering.
  std::vector<std::pair<int, const nlohmann::json*>> questions;
  for (const auto& [key, q] : doc.items()) {
    int k = 0;
    try {
      k = std::stoi(key);
    } catch (const std::exception&) {
      throw Error(fmt::format("{}: question key '{}' is not a number", file.string(), key));
    }
    questions.emplace_back(k, &q);
  }
  std::sort(questions.begin(), questions.end(),
            [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<EqItem> items;
  for (const auto& [k, q] : questions) {
    const std::string at = fmt::format("{}: question {}", file.string(), k);
    EqItem it;
    it.id = fmt::format("eq_bench/{}", k);
    it.prompt = json_string(*q, "prompt", at);
    if (!q->contains("reference_answer_fullscale"))
      throw Error(fmt::format("{}: needs \"reference_answer_fullscale\"", at));
    const auto& ref = (*q)["reference_answer_fullscale"];
    for (int e = 0; e < 4; ++e) {
      it.reference.emotions[e] = json_string(ref, fmt::format("emotion{}", e + 1).c_str(), at);
      const auto& s = ref.value(fmt::format("emotion{}_score", e + 1), nlohmann::json());
      // Some scores are stored as strings ("6").
      if (s.is_number()) {
        it.reference.scores[e] = s.get<double>();
      } else if (s.is_string()) {
        try {
          it.reference.scores[e] = std::stod(s.get<std::string>());
        } catch (const std::exception&) {
          throw Error(fmt::format("{}: emotion{}_score '{}' is not a number", at, e + 1,
                                  s.get<std::string>()));
        }
      } else {
        throw Error(fmt::format("{}: needs \"emotion{}_score\"", at, e + 1));
      }
    }
    items.push_back(std::move(it));
  }
  return std::make_unique<EqBenchTask>(
      "eq_bench", "EQ-Bench v2, rate four emotions 0-10; EQ-Bench's score (0-100)",
      std::move(items));
}

std::unique_ptr<Task> load_tinystories(const fs::path& data_dir) {
  auto passages =
      paragraphs(data_dir / "tinystories" / "tinystories_val.txt", "tinystories", false);
  auto stories = story_clusters(passages, "tinystories", "Once upon a time");
  auto task = std::make_unique<PassageTask>(
      "tinystories", "TinyStories validation sample, one paragraph per item", std::move(passages));
  task->set_clusters(std::move(stories));
  return task;
}

std::unique_ptr<Task> load_wikitext2(const fs::path& data_dir) {
  return std::make_unique<PassageTask>(
      "wikitext2", "WikiText-2 test (tokenized text), one paragraph per item",
      paragraphs(data_dir / "wikitext2" / "test.txt", "wikitext2", true));
}

}  // namespace reprise::eval
