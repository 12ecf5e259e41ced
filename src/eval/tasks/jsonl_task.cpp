#include "eval/tasks/jsonl_task.h"

#include <fmt/format.h>

#include <map>
#include <memory>
#include <optional>
#include <set>

#include "eval/io.h"
#include "eval/metrics.h"
#include "eval/regex.h"
#include "eval/tasks/digits.h"
#include "eval/tasks/generation.h"
#include "eval/tasks/multiple_choice.h"
#include "eval/tasks/passages.h"
#include "util/error.h"

namespace reprise::eval {
namespace fs = std::filesystem;
namespace {

enum class Kind { Choice, Partial, Generation, Digit, Passage };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::Choice:
      return "multiple-choice";
    case Kind::Partial:
      return "partial-scoring";
    case Kind::Generation:
      return "generation";
    case Kind::Digit:
      return "digit";
    case Kind::Passage:
      return "passage";
  }
  return "";
}

std::optional<Kind> kind_of(const nlohmann::json& j) {
  if (j.contains("choices")) return Kind::Choice;
  if (j.contains("contexts")) return Kind::Partial;
  if (j.contains("target")) return Kind::Generation;
  if (j.contains("digit")) return Kind::Digit;
  if (j.contains("text")) return Kind::Passage;
  return std::nullopt;
}

bool is_integer_text(const std::string& s) {
  static const Regex re(R"(^\s*-?\d+\s*$)");
  return re.first(s).has_value();
}

// The item's "id" (a string or an integer), or FILE-STEM/LINE when it has none.
std::string item_id(const nlohmann::json& j, const std::string& stem, int line,
                    const std::string& at) {
  if (!j.contains("id")) return fmt::format("{}/{}", stem, line);
  const auto& v = j["id"];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_integer()) return std::to_string(v.get<int64_t>());
  throw Error(fmt::format("{}: \"id\" must be a string or an integer", at));
}

// A generation item; its "regex" (checked; "" = none) goes to `regex`.
GenItem generation_item(const nlohmann::json& j, const std::string& id, const std::string& at,
                        std::string& regex) {
  GenItem it{id, json_string(j, "context", at), json_string(j, "target", at), {}, 0};
  if (j.contains("stop")) it.stop = json_strings(j, "stop", at);
  if (j.contains("max_tokens")) {
    const int64_t m = json_int(j, "max_tokens", at);
    if (m < 1 || m > 65536)
      throw Error(fmt::format("{}: \"max_tokens\" {} is out of range (1-65536)", at, m));
    it.max_tokens = static_cast<int>(m);
  }
  if (j.contains("regex")) {
    regex = json_string(j, "regex", at);
    try {
      Regex check(regex);
    } catch (const Error& e) {
      throw Error(fmt::format("{}: {}", at, e.what()));
    }
  }
  return it;
}

std::unique_ptr<Task> generation_task(const std::string& stem, const std::string& desc,
                                      std::vector<GenItem> gen,
                                      const std::vector<std::string>& regexes) {
  // Generation: exact match after the item's regex (its first group) or the output's first line;
  // numeric partial credit as well when every target is an integer.
  auto compiled = std::make_shared<std::vector<std::optional<Regex>>>();
  std::map<std::string, size_t> index_of;
  for (size_t i = 0; i < gen.size(); ++i) {
    compiled->push_back(regexes[i].empty() ? std::nullopt : std::optional<Regex>(regexes[i]));
    index_of[gen[i].id] = i;
  }
  auto extract = [compiled, index_of](const std::string& out, const GenItem& item) {
    const auto& re = (*compiled)[index_of.at(item.id)];
    if (re) return re->first(out).value_or("");
    return extract_answer(out, AnswerFormat::Text);
  };
  std::vector<GenMetric> metrics;
  GenMetric em;
  em.info = {"exact_match", MetricKind::Binary, true};
  em.score = [extract](const std::string& out, const GenItem& item, std::string& e) {
    e = extract(out, item);
    return !e.empty() && extract_answer(e, AnswerFormat::Text) ==
                             extract_answer(item.gold, AnswerFormat::Text)
               ? 1.0
               : 0.0;
  };
  metrics.push_back(em);
  bool numeric = true;
  for (const auto& it : gen) numeric = numeric && is_integer_text(it.gold);
  if (numeric) {
    GenMetric rys;
    rys.info = {"rys_score", MetricKind::Continuous, true};
    rys.score = [extract](const std::string& out, const GenItem& item, std::string& e) {
      e = first_integer(extract(out, item)).value_or("");
      return rys_score(item.gold, e);
    };
    metrics.push_back(rys);
  }
  return std::make_unique<GenerationTask>(stem, desc, std::move(gen),
                                          std::vector<std::string>{"\n"}, 64, std::move(metrics));
}

}  // namespace

std::unique_ptr<Task> load_jsonl_task(const fs::path& file) {
  const std::string stem = file.stem().string();
  std::optional<Kind> kind;
  std::set<std::string> ids;
  std::vector<ChoiceItem> choice;
  std::vector<GenItem> gen;
  std::vector<std::string> regexes;  // per generation item, "" = first line of the output
  std::vector<DigitItem> digit;
  std::vector<Passage> passage;

  for_each_jsonl(file, [&](const nlohmann::json& j, int line) {
    const std::string at = fmt::format("{}:{}", file.string(), line);
    if (!j.is_object()) throw Error(fmt::format("{}: expected a JSON object", at));
    const auto k = kind_of(j);
    if (!k)
      throw Error(
          fmt::format("{}: cannot tell the item's kind (needs \"choices\", \"contexts\", "
                      "\"target\", \"digit\" or \"text\")",
                      at));
    if (kind && *kind != *k)
      throw Error(
          fmt::format("{}: a {} item in a file of {} items", at, kind_name(*k), kind_name(*kind)));
    kind = k;
    const std::string id = item_id(j, stem, line, at);
    if (!ids.insert(id).second) throw Error(fmt::format("{}: duplicate id '{}'", at, id));

    auto gold_index = [&](size_t n) {
      const int64_t g = json_int(j, "gold", at);
      if (g < 0 || static_cast<size_t>(g) >= n)
        throw Error(fmt::format("{}: \"gold\" {} is out of range ({} choices)", at, g, n));
      return static_cast<size_t>(g);
    };
    switch (*k) {
      case Kind::Choice: {
        ChoiceItem it{id, json_string(j, "context", at), json_strings(j, "choices", at), "", 0};
        it.gold = gold_index(it.choices.size());
        choice.push_back(std::move(it));
        break;
      }
      case Kind::Partial: {
        ChoiceItem it{id, "", json_strings(j, "contexts", at), json_string(j, "continuation", at),
                      0};
        it.gold = gold_index(it.choices.size());
        choice.push_back(std::move(it));
        break;
      }
      case Kind::Generation:
        gen.push_back(generation_item(j, id, at, regexes.emplace_back()));
        break;
      case Kind::Digit: {
        const int64_t d = json_int(j, "digit", at);
        if (d < 0 || d > 9) throw Error(fmt::format("{}: \"digit\" {} is not 0-9", at, d));
        digit.push_back({id, json_string(j, "context", at), static_cast<int>(d)});
        break;
      }
      case Kind::Passage:
        passage.push_back({id, json_string(j, "text", at)});
        break;
    }
  });
  if (!kind) throw Error(fmt::format("{}: no items", file.string()));

  const std::string desc = fmt::format("{} items from {}", kind_name(*kind), file.string());
  switch (*kind) {
    case Kind::Choice:
      return std::make_unique<MultipleChoiceTask>(stem, desc, std::move(choice), "");
    case Kind::Partial:
      return std::make_unique<MultipleChoiceTask>(stem, desc, std::move(choice), "",
                                                  /*partial=*/true);
    case Kind::Digit:
      return std::make_unique<DigitTask>(stem, desc, std::move(digit));
    case Kind::Passage:
      return std::make_unique<PassageTask>(stem, desc, std::move(passage));
    case Kind::Generation:
      break;
  }
  return generation_task(stem, desc, std::move(gen), regexes);
}

}  // namespace reprise::eval
