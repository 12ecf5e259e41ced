// BIG-Bench Hard (data/bbh: 27 tasks, each with three worked examples) in four prompt and scoring
// variants: reprise's own zero-shot bbh_<task>, and lm-evaluation-harness's bbh_zeroshot_<task>,
// bbh_fewshot_<task> and bbh_cot_fewshot_<task> with lm-eval's prompts, stop sequences, filters
// and metrics (lm-eval 0.4.13's task YAMLs; tests/data/bbh_lmeval holds what lm-eval itself does).
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "eval/task.h"

namespace reprise::eval {

enum class BbhVariant {
  Reprise,     // bbh_<task>: the description's first line, reprise's answer extraction
  ZeroShot,    // bbh_zeroshot_<task>: lm-eval's, strict-match and flexible-extract
  FewShot,     // bbh_fewshot_<task>: lm-eval's, three examples answered without reasoning
  CotFewShot,  // bbh_cot_fewshot_<task>: lm-eval's, three worked chain-of-thought examples
};

inline constexpr BbhVariant kBbhVariants[] = {BbhVariant::Reprise, BbhVariant::ZeroShot,
                                              BbhVariant::FewShot, BbhVariant::CotFewShot};

// The task-name prefix of a variant: "bbh_", "bbh_zeroshot_", "bbh_fewshot_", "bbh_cot_fewshot_".
const char* bbh_prefix(BbhVariant v);

// The 27 BIG-Bench Hard task names, alphabetical.
const std::vector<std::string>& bbh_task_names();

// "bbh_fewshot_navigate" -> (FewShot, "navigate"); nullopt when the name is no BBH task.
std::optional<std::pair<BbhVariant, std::string>> parse_bbh_name(const std::string& name);

// Reads data/bbh/bbh/<task>.json and data/bbh/cot-prompts/<task>.txt; throws Error naming the
// file on malformed input.
std::unique_ptr<Task> load_bbh(const std::filesystem::path& data_dir, const std::string& task,
                               BbhVariant variant);
// cot: CotFewShot, else Reprise.
inline std::unique_ptr<Task> load_bbh(const std::filesystem::path& data_dir,
                                      const std::string& task, bool cot) {
  return load_bbh(data_dir, task, cot ? BbhVariant::CotFewShot : BbhVariant::Reprise);
}

// A variant's metrics, for `eval --list` without loading any data.
std::vector<MetricInfo> bbh_metrics(BbhVariant v);

// lm-eval's bbh_zeroshot_<task> "flexible-extract" filter applied to one model response to the
// item whose question is `input` (some filters read the options or the word list from it):
// a regex, its multiple-choice filter (letter, then option text, then ": X"), its yes/no map, its
// number parser (digits, then English number words), or its word-sorting filter. Returns what
// lm-eval's filter returns, "[invalid]" when it finds nothing (word sorting: ""). Where lm-eval's
// number-word parser raises (and lm-eval stops), this returns "[invalid]".
std::string bbh_flexible_extract(const std::string& task, std::string_view input,
                                 std::string_view response);

// word2number 1.1's word_to_num on lower-case number words ("one hundred and five" -> 105), as
// lm-eval's number filter calls it; nullopt where it raises (no number word, a repeated
// "thousand", "million" or "billion", or a malformed order).
std::optional<int64_t> words_to_number(std::string_view words);

}  // namespace reprise::eval
