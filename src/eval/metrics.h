// Per-item scoring rules, as plain functions so they can be tested against hand-computed values.
#pragma once

#include <array>
#include <cstddef>
#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "eval/regex.h"

namespace reprise::eval {

// --- Multiple choice by log-likelihood ----------------------------------------------------------

struct ChoiceScore {
  size_t pred = 0;       // argmax of the log-likelihoods (the first on ties)
  size_t pred_norm = 0;  // argmax of log-likelihood / length of the choice in characters
  double acc = 0;        // pred == gold
  double acc_norm = 0;   // pred_norm == gold
};

// `choices` are the option texts as the task defines them (without the space that joins them
// to the context); length normalisation divides by their length in Unicode characters, as
// lm-evaluation-harness's acc_norm does.
ChoiceScore score_choices(std::span<const double> loglik, std::span<const std::string> choices,
                          size_t gold);

size_t utf8_length(std::string_view s);

// --- Numbers ------------------------------------------------------------------------------------

// A number as written by a model or a dataset, made comparable: "$1,234.50" -> "1234.5",
// "18." -> "18", "-0" -> "0", "+7" -> "7". Returns "" when `s` holds no digits.
std::string normalize_number(std::string_view s);

// The first / last integer in the text (optional minus sign, digits with optional thousands
// commas), normalized; nullopt when there is none.
std::optional<std::string> first_integer(std::string_view text);
std::optional<std::string> last_number(std::string_view text);  // decimals allowed

// --- lm-evaluation-harness's filters and exact_match -----------------------------------------

// What lm-eval's regex filter returns when nothing matches.
inline constexpr const char* kNoMatch = "[invalid]";

// lm-eval's "regex" filter followed by "take_first": the group_select-th match (negative counts
// from the end, as Python indexing does), its first non-empty group, stripped of surrounding
// whitespace; kNoMatch when there is no such match.
std::string regex_filter(std::string_view response, const Regex& pattern, int group_select = 0);

// lm-eval's exact_match: every pattern in `ignore` is removed from both strings in turn (Python's
// re.sub(p, "", s)), then both are lowercased when ignore_case; equal strings score 1.
bool exact_match(std::string prediction, std::string reference, std::span<const Regex> ignore,
                 bool ignore_case);

// RYS numeric partial credit for integer answers. Both numbers (digits of their magnitudes) are
// padded on the right with zeros to the same length L; with A, P the padded values and `pad` the
// number of zeros added, score = (1 - |A - P| / max(A, P)) * (1 - pad / L), clamped to [0, 1].
// A missing or non-numeric prediction, or opposite signs, score 0.
double rys_score(std::string_view gold, std::string_view pred);

// --- BIG-Bench Hard answers ---------------------------------------------------------------------

enum class AnswerFormat { Letter, TrueFalse, YesNo, Validity, Integer, Text };

// The format an item's target is written in: "(C)", "True"/"False", "Yes"/"No" (any case),
// "valid"/"invalid", an integer, or free text (word sorting, Dyck languages).
AnswerFormat answer_format_of(std::string_view target);

// The answer in the format from a model's output ("" when none is found): the first "(X)" (or a
// leading bare letter), the first True/False, yes/no or valid/invalid word, the first integer, or
// for free text the first line with whitespace collapsed and a final period dropped.
std::string extract_answer(std::string_view output, AnswerFormat format);

// Exact match of an extracted answer and a target (case-insensitive for the word formats).
bool answer_matches(std::string_view extracted, std::string_view target, AnswerFormat format);

// --- EQ-Bench (v2) ------------------------------------------------------------------------------

struct EqReference {
  std::array<std::string, 4> emotions;
  std::array<double, 4> scores{};
};

// The model's scores for the four emotions: from the part after the last "Revised scores:" when
// present, else the whole output; for each emotion its last "Emotion: N" line. nullopt unless
// all four are found.
std::optional<std::array<double, 4>> eqbench_parse(std::string_view output, const EqReference& ref);

// EQ-Bench v2 question score on a 0-100 scale: each emotion's difference d = |pred - ref| costs
// 0 when d = 0, 6.5 / (1 + e^(-1.2 (d - 4))) when 0 < d <= 5, and d beyond; the question scores
// 10 - 0.7477 * (sum of costs), times 10 (EQ-Bench reports the mean of question scores x 10).
double eqbench_score(const std::array<double, 4>& pred, const EqReference& ref);

// --- Expected value over digit tokens -----------------------------------------------------------

struct DigitScore {
  double expected = 0;  // sum of d * p(d)
  double score = 0;     // 1 - |expected - gold| / 9
  double acc = 0;       // the most probable digit is the gold one
  double p_gold = 0;
};

// probs[d] is the (renormalised) probability of digit d, for d = 0..9.
DigitScore score_digits(std::span<const double> probs, int gold);

}  // namespace reprise::eval
