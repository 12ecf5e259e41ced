#include "eval/tasks/datasets.h"

#include <fmt/format.h>

#include <algorithm>
#include <sstream>

#include "eval/io.h"
#include "eval/metrics.h"
#include "eval/py_random.h"
#include "eval/regex.h"
#include "eval/tasks/eq_bench.h"
#include "eval/tasks/generation.h"
#include "eval/tasks/multiple_choice.h"
#include "eval/tasks/passages.h"
#include "util/error.h"
#include "util/strings.h"

namespace reprise::eval {
namespace fs = std::filesystem;
namespace {

std::string where(const fs::path& file, int line) {
  return fmt::format("{}:{}", file.string(), line);
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
    const std::string t(trim(line));
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

std::unique_ptr<Task> load_arc(const fs::path& data_dir, bool challenge) {
  const std::string name = challenge ? "arc_challenge" : "arc_easy";
  auto items = query_choice_items(data_dir / "arc" / (name + ".jsonl"), name);
  return std::make_unique<MultipleChoiceTask>(
      name, challenge ? "ARC-Challenge test, multiple choice" : "ARC-Easy test, multiple choice",
      std::move(items));
}

std::unique_ptr<Task> load_boolq(const fs::path& data_dir) {
  auto items = query_choice_items(data_dir / "boolq" / "boolq.jsonl", "boolq");
  // llm-foundry's query is "Passage: {passage}\nQuestion: {question}?"; lm-eval's prompt has no
  // "Passage: " label.
  const std::string label = "Passage: ";
  for (auto& it : items)
    if (it.context.rfind(label, 0) == 0) it.context.erase(0, label.size());
  // Several questions ask about one passage: the passage is the unit they share.
  std::vector<std::string> passages;
  for (const auto& it : items)
    passages.push_back(it.context.substr(0, it.context.find("\nQuestion:")));
  auto task = std::make_unique<MultipleChoiceTask>("boolq", "BoolQ dev, yes/no by log-likelihood",
                                                   std::move(items), " ", /*partial=*/false,
                                                   /*acc_norm=*/false);
  task->set_version(2.0);
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
  return {{"exact_match", MetricKind::Binary, true, "strict-match"},
          {"exact_match", MetricKind::Binary, true, "flexible-extract"}};
}

std::unique_ptr<Task> load_gsm8k(const fs::path& data_dir, bool fewshot) {
  struct Problem {
    std::string question, answer;
  };
  auto read = [](const fs::path& file) {
    std::vector<Problem> out;
    for_each_jsonl(file, [&](const nlohmann::json& j, int line) {
      const std::string at = where(file, line);
      Problem p{json_string(j, "question", at), json_string(j, "answer", at)};
      if (p.answer.find("#### ") == std::string::npos)
        throw Error(fmt::format("{}: \"answer\" has no '#### ' line", at));
      out.push_back(std::move(p));
    });
    return out;
  };
  const std::vector<Problem> test = read(data_dir / "gsm8k" / "test.jsonl");
  std::vector<Problem> train;
  if (fewshot) {
    const fs::path file = data_dir / "gsm8k" / "train.jsonl";
    if (!fs::exists(file))
      throw Error(fmt::format(
          "{}: not found; lm-eval's gsm8k takes its five examples from GSM8K's train split "
          "(openai/grade-school-math, grade_school_math/data/train.jsonl): put it there, or run "
          "gsm8k_zeroshot",
          file.string()));
    train = read(file);
    if (train.size() < 5) throw Error(fmt::format("{}: fewer than 5 problems", file.string()));
  }
  // lm-eval draws each test item's examples in turn from one random.Random(1234) (its default
  // few-shot seed): item i's examples do not depend on --limit.
  PyRandom rng(1234);
  std::vector<GenItem> items;
  for (const auto& p : test) {
    GenItem it;
    it.id = fmt::format("gsm8k/{}", items.size());
    if (fewshot)
      for (size_t k : rng.sample(train.size(), 5))
        it.context += "Question: " + train[k].question + "\nAnswer: " + train[k].answer + "\n\n";
    it.context += "Question: " + p.question + "\nAnswer:";
    it.gold = p.answer;  // lm-eval's target: the whole worked answer
    items.push_back(std::move(it));
  }
  auto ignore = std::make_shared<std::vector<Regex>>();
  for (const char* p : {",", "\\$", "(?s).*#### ", "\\.$"}) ignore->emplace_back(p);
  auto metric = [ignore](const MetricInfo& info, const char* pattern, int group_select) {
    auto re = std::make_shared<Regex>(pattern);
    GenMetric m;
    m.info = info;
    m.score = [=](const std::string& out, const GenItem& item, std::string& extracted) {
      extracted = regex_filter(out, *re, group_select);
      return exact_match(extracted, item.gold, *ignore, /*ignore_case=*/true) ? 1.0 : 0.0;
    };
    return m;
  };
  const auto infos = gsm8k_metrics();
  std::vector<GenMetric> metrics = {
      metric(infos[0], "#### (\\-?[0-9\\.\\,]+)", 0),
      metric(infos[1], "(-?[$0-9.,]{2,})|(-?[0-9]+)", -1),
  };
  auto task = std::make_unique<GenerationTask>(
      fewshot ? "gsm8k" : "gsm8k_zeroshot",
      fewshot ? "GSM8K test, lm-eval's gsm8k: five train-split examples, its filters"
              : "GSM8K test, lm-eval's gsm8k prompt and filters without its five examples",
      std::move(items), std::vector<std::string>{"Question:", "</s>", "<|im_end|>"}, 256,
      std::move(metrics));
  task->set_version(3.0);
  task->set_num_fewshot(fewshot ? 5 : 0);
  return task;
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
  auto passages = paragraphs(data_dir / "tinystories" / "tinystories_val.txt", "tinystories",
                             /*skip_headings=*/false);
  auto stories = story_clusters(passages, "tinystories", "Once upon a time");
  auto task = std::make_unique<PassageTask>(
      "tinystories", "TinyStories validation sample, one paragraph per item", std::move(passages));
  task->set_clusters(std::move(stories));
  return task;
}

std::unique_ptr<Task> load_wikitext2(const fs::path& data_dir) {
  return std::make_unique<PassageTask>(
      "wikitext2", "WikiText-2 test (tokenized text), one paragraph per item",
      paragraphs(data_dir / "wikitext2" / "test.txt", "wikitext2", /*skip_headings=*/true));
}

}  // namespace reprise::eval
