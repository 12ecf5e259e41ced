#include "eval/registry.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <set>

#include "eval/data_dir.h"
#include "eval/metrics.h"
#include "eval/probes.h"
#include "eval/tasks/bbh.h"
#include "eval/tasks/datasets.h"
#include "eval/tasks/digits.h"
#include "eval/tasks/eq_bench.h"
#include "eval/tasks/generation.h"
#include "eval/tasks/jsonl_task.h"
#include "eval/tasks/multiple_choice.h"
#include "eval/tasks/passages.h"
#include "util/error.h"
#include "util/strings.h"

namespace reprise::eval {
namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

const ProbeSpec* find_probe(const std::string& base) {
  for (const auto& p : probe_specs())
    if (base == p.name) return &p;
  return nullptr;
}

std::vector<MetricInfo> math_probe_metrics() {
  return {{"exact_match", MetricKind::Binary, true}, {"rys_score", MetricKind::Continuous, true}};
}

// "probe_math" or "probe_math:6" -> ("probe_math", 6); nullopt when not a probe name.
std::optional<std::pair<const ProbeSpec*, int>> parse_probe(const std::string& name) {
  const size_t colon = name.find(':');
  const ProbeSpec* spec = find_probe(name.substr(0, colon));
  if (!spec) return std::nullopt;
  int d = spec->default_difficulty;
  if (colon != std::string::npos) {
    const std::string v = name.substr(colon + 1);
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), d);
    if (v.empty() || ec != std::errc() || p != v.data() + v.size() || d < spec->min_difficulty ||
        d > spec->max_difficulty)
      throw Error(fmt::format("task '{}': difficulty must be an integer {}-{} ({})", name,
                              spec->min_difficulty, spec->max_difficulty, spec->knob));
  }
  return std::make_pair(spec, d);
}

std::unique_ptr<Task> make_probe(const ProbeSpec& spec, int d, uint64_t seed) {
  const std::string name = fmt::format("{}:{}", spec.name, d);
  auto id = [&](size_t i) { return fmt::format("{}/s{}/{}", name, seed, i); };
  const std::string base = spec.name;
  if (base == "probe_math") {
    std::vector<GenItem> items;
    for (size_t i = 0; i < kProbeItems; ++i) {
      const MathProbeItem p = math_probe_item(seed, d, i);
      items.push_back(
          {id(i), "Answer with the number only.\n\nQ: " + p.question + "\nA:", p.answer, {}, 0});
    }
    std::vector<GenMetric> metrics = {
        exact_match_metric(
            "exact_match", [](const std::string& out) { return first_integer(out).value_or(""); },
            [](const std::string& e, const std::string& gold) { return e == gold; }),
        GenMetric{math_probe_metrics()[1],
                  [](const std::string& out, const GenItem& item, std::string& e) {
                    e = first_integer(out).value_or("");
                    return rys_score(item.gold, e);
                  }},
    };
    return std::make_unique<GenerationTask>(
        name, fmt::format("RYS-style hard math, {} digits per operand (seed {})", d, seed),
        std::move(items), std::vector<std::string>{"\n"}, 4 * d + 8, std::move(metrics));
  }
  if (base == "probe_logic") {
    std::vector<ChoiceItem> items;
    for (size_t i = 0; i < kProbeItems; ++i) {
      LogicProbeItem p = logic_probe_item(seed, d, i);
      items.push_back({id(i), p.context, std::move(p.choices), "", p.gold});
    }
    return std::make_unique<MultipleChoiceTask>(
        name, fmt::format("ordering puzzles with {} objects (seed {})", d, seed), std::move(items));
  }
  std::vector<DigitItem> items;
  for (size_t i = 0; i < kProbeItems; ++i) {
    const ChainProbeItem p = chain_probe_item(seed, d, i);
    items.push_back({id(i), p.context, p.answer});
  }
  return std::make_unique<DigitTask>(
      name, fmt::format("arithmetic chains of {} operations on digits (seed {})", d, seed),
      std::move(items));
}

// Names that are not BBH tasks, probes or groups, with their listings.
std::vector<TaskListing> plain_listing() {
  const auto mc = MultipleChoiceTask::metrics(/*acc_norm=*/true);
  return {
      {"tinystories", "loglikelihood_rolling", PassageTask::metrics(),
       "TinyStories validation sample, one paragraph per item"},
      {"wikitext2", "loglikelihood_rolling", PassageTask::metrics(),
       "WikiText-2 test (tokenized), one paragraph per item"},
      {"arc_easy", "multiple_choice", mc, "ARC-Easy test (2,376 questions)"},
      {"arc_challenge", "multiple_choice", mc, "ARC-Challenge test (1,172 questions)"},
      {"winogrande", "multiple_choice_partial", MultipleChoiceTask::metrics(/*acc_norm=*/false),
       "WinoGrande dev (1,267), partial scoring"},
      {"boolq", "multiple_choice", MultipleChoiceTask::metrics(/*acc_norm=*/false),
       "BoolQ dev (3,270 yes/no questions)"},
      {"gsm8k", "generate_until", gsm8k_metrics(),
       "GSM8K test (1,319), lm-eval's 5-shot gsm8k (needs gsm8k/train.jsonl)"},
      {"gsm8k_zeroshot", "generate_until", gsm8k_metrics(),
       "GSM8K test (1,319), lm-eval's gsm8k without its 5 examples"},
      {"eq_bench", "generate_until", EqBenchTask::metrics(), "EQ-Bench v2 (171 questions)"},
  };
}

std::string known_names() {
  std::string s;
  for (const auto& t : plain_listing()) s += t.name + ", ";
  for (const auto& p : probe_specs())
    s += fmt::format("{}[:{}-{}], ", p.name, p.min_difficulty, p.max_difficulty);
  s += "bbh_<task>, bbh_zeroshot_<task>, bbh_fewshot_<task>, bbh_cot_fewshot_<task> (<task>: ";
  for (const auto& b : bbh_task_names()) s += b + (b == bbh_task_names().back() ? "" : ", ");
  return s +
         "), groups bbh (= bbh_cot_fewshot), bbh_zeroshot, bbh_fewshot, bbh_zeroshot_reprise, "
         "probes, or a .jsonl file";
}

// A --task value's comma-separated names, trimmed.
std::vector<std::string> split_names(const std::string& spec) {
  std::vector<std::string> out;
  for (std::string_view piece : split(spec, ',')) {
    std::string name(trim(piece));
    if (name.empty()) throw Error(fmt::format("--task '{}': empty task name", spec));
    out.push_back(std::move(name));
  }
  return out;
}

// The BBH groups: lm-eval's (bbh = bbh_cot_fewshot, bbh_zeroshot, bbh_fewshot), whose results
// rows report the one metric lm-eval's group YAML aggregates, their tasks' primary metric; and
// reprise's own.
struct BbhGroup {
  const char* name;
  BbhVariant variant;
  bool lm_eval;
};

constexpr BbhGroup kBbhGroups[] = {
    {"bbh", BbhVariant::CotFewShot, true},
    {"bbh_cot_fewshot", BbhVariant::CotFewShot, true},
    {"bbh_zeroshot", BbhVariant::ZeroShot, true},
    {"bbh_fewshot", BbhVariant::FewShot, true},
    {"bbh_zeroshot_reprise", BbhVariant::Reprise, false},
};

std::vector<MetricInfo> bbh_group_metrics(const BbhGroup& g) {
  std::vector<MetricInfo> m = bbh_metrics(g.variant);
  if (g.lm_eval) m.resize(1);
  return m;
}

const BbhGroup* find_bbh_group(const std::string& name) {
  for (const auto& g : kBbhGroups)
    if (name == g.name) return &g;
  return nullptr;
}

}  // namespace

std::vector<TaskListing> task_listing() {
  std::vector<TaskListing> out = plain_listing();
  const std::pair<BbhVariant, const char*> bbh[] = {
      {BbhVariant::Reprise, "BIG-Bench Hard, zero-shot (reprise's own extraction)"},
      {BbhVariant::ZeroShot, "BIG-Bench Hard, lm-eval's zero-shot (v3.0)"},
      {BbhVariant::FewShot, "BIG-Bench Hard, lm-eval's three-shot answers (v2.0)"},
      {BbhVariant::CotFewShot, "BIG-Bench Hard, lm-eval's three-shot chain of thought (v3.0)"},
  };
  for (const auto& [variant, what] : bbh)
    for (const auto& b : bbh_task_names())
      out.push_back({bbh_prefix(variant) + b, "generate_until", bbh_metrics(variant), what});
  for (const auto& p : probe_specs()) {
    const std::string base = p.name;
    TaskListing t;
    t.name = fmt::format("{}[:D]", p.name);
    if (base == "probe_math") {
      t.output_type = "generate_until";
      t.metrics = math_probe_metrics();
    } else if (base == "probe_logic") {
      t.output_type = "multiple_choice";
      t.metrics = MultipleChoiceTask::metrics(/*acc_norm=*/true);
    } else {
      t.output_type = "digit_expectation";
      t.metrics = DigitTask::metrics();
    }
    t.description = fmt::format("seeded probe, D = {} ({}-{}, default {})", p.knob,
                                p.min_difficulty, p.max_difficulty, p.default_difficulty);
    out.push_back(std::move(t));
  }
  for (const auto& g : kBbhGroups)
    out.push_back({g.name, "group", bbh_group_metrics(g),
                   std::string(g.name) == "bbh"
                       ? "the 27 bbh_cot_fewshot_<task> (lm-eval's bbh)"
                       : fmt::format("the 27 {}<task> tasks", bbh_prefix(g.variant))});
  out.push_back({"probes", "group", {}, "probe_math, probe_logic, probe_chain (default D)"});
  return out;
}

std::vector<std::string> resolve_task_names(const std::string& spec) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto add = [&](const std::string& n) {
    if (seen.insert(n).second) out.push_back(n);
  };
  for (const auto& name : split_names(spec)) {
    if (ends_with(name, ".jsonl")) {
      add(name);
    } else if (const BbhGroup* g = find_bbh_group(name)) {
      for (const auto& b : bbh_task_names()) add(bbh_prefix(g->variant) + b);
    } else if (name == "probes") {
      for (const auto& p : probe_specs()) add(fmt::format("{}:{}", p.name, p.default_difficulty));
    } else if (auto probe = parse_probe(name)) {
      add(fmt::format("{}:{}", probe->first->name, probe->second));
    } else {
      bool known = false;
      for (const auto& t : plain_listing()) known = known || t.name == name;
      known = known || parse_bbh_name(name).has_value();
      if (!known) throw Error(fmt::format("unknown task '{}' (known: {})", name, known_names()));
      add(name);
    }
  }
  return out;
}

std::vector<TaskGroup> lm_eval_groups(const std::string& spec) {
  std::vector<TaskGroup> out;
  for (const auto& name : split_names(spec)) {
    const BbhGroup* bg = find_bbh_group(name);
    if (!bg || !bg->lm_eval) continue;
    TaskGroup g{name, {}, {bbh_group_metrics(*bg)[0].id()}, 3.0};
    for (const auto& b : bbh_task_names()) g.tasks.push_back(bbh_prefix(bg->variant) + b);
    bool seen = false;
    for (const auto& o : out) seen = seen || o.name == name;
    if (!seen) out.push_back(std::move(g));
  }
  return out;
}

std::unique_ptr<Task> make_task(const std::string& name, const TaskOptions& opts) {
  if (ends_with(name, ".jsonl")) return load_jsonl_task(name);
  if (auto probe = parse_probe(name)) return make_probe(*probe->first, probe->second, opts.seed);
  const std::filesystem::path data = opts.data_dir.empty() ? find_data_dir() : opts.data_dir;
  if (name == "tinystories") return load_tinystories(data);
  if (name == "wikitext2") return load_wikitext2(data);
  if (name == "arc_easy") return load_arc(data, /*challenge=*/false);
  if (name == "arc_challenge") return load_arc(data, /*challenge=*/true);
  if (name == "winogrande") return load_winogrande(data);
  if (name == "boolq") return load_boolq(data);
  if (name == "gsm8k") return load_gsm8k(data, /*fewshot=*/true);
  if (name == "gsm8k_zeroshot") return load_gsm8k(data, /*fewshot=*/false);
  if (name == "eq_bench") return load_eq_bench(data);
  if (auto bbh = parse_bbh_name(name)) return load_bbh(data, bbh->second, bbh->first);
  throw Error(fmt::format("unknown task '{}' (known: {})", name, known_names()));
}

std::vector<std::unique_ptr<Task>> make_tasks(const std::string& spec, const TaskOptions& opts) {
  std::vector<std::unique_ptr<Task>> tasks;
  for (const auto& name : resolve_task_names(spec)) tasks.push_back(make_task(name, opts));
  return tasks;
}

std::string task_listing_table() {
  const auto tasks = task_listing();
  size_t w = 0;
  for (const auto& t : tasks) w = std::max(w, t.name.size());
  std::string out =
      fmt::format("{:<{}}  {:<24}  {:<40}  {}\n", "task", w, "kind", "metrics", "description");
  for (const auto& t : tasks) {
    std::string metrics;
    for (const auto& m : t.metrics)
      metrics +=
          fmt::format("{}{} ({})", metrics.empty() ? "" : ", ", m.id(), metric_kind_name(m.kind));
    out += fmt::format("{:<{}}  {:<24}  {:<40}  {}\n", t.name, w, t.output_type, metrics,
                       t.description);
  }
  return out + "\nA path ending in .jsonl is a task file of your own (docs/evaluation.md).\n";
}

}  // namespace reprise::eval
