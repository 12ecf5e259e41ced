#include "eval/tasks/bbh.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <mutex>
#include <unordered_map>

#include "eval/io.h"
#include "eval/metrics.h"
#include "eval/regex.h"
#include "eval/tasks/generation.h"
#include "util/error.h"

namespace reprise::eval {
namespace fs = std::filesystem;
namespace {

// --- Python's string whitespace ----------------------------------------------------------------

// The code point at s[i] and its length in bytes; an invalid byte reads as U+FFFD, length 1.
char32_t decode_utf8(std::string_view s, size_t i, size_t& len) {
  const auto b = static_cast<unsigned char>(s[i]);
  const size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
  if (n == 0 || i + n > s.size()) {
    len = 1;
    return 0xFFFD;
  }
  char32_t c = n == 1 ? b : b & (0x7F >> n);
  for (size_t k = 1; k < n; ++k) {
    const auto cb = static_cast<unsigned char>(s[i + k]);
    if ((cb & 0xC0) != 0x80) {
      len = 1;
      return 0xFFFD;
    }
    c = (c << 6) | (cb & 0x3F);
  }
  len = n;
  return c;
}

// Python's str.isspace(), which str.strip() and str.split() use: model output can end in a
// no-break space or a line separator as well as in ASCII whitespace.
bool py_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
         c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
         c == 0x205F || c == 0x3000;
}

std::string_view py_strip(std::string_view s) {
  size_t len = 0;
  while (!s.empty() && py_space(decode_utf8(s, 0, len))) s.remove_prefix(len);
  while (!s.empty()) {
    size_t start = s.size() - 1;
    while (start > 0 && s.size() - start < 4 &&
           (static_cast<unsigned char>(s[start]) & 0xC0) == 0x80)
      --start;
    const char32_t c = decode_utf8(s, start, len);
    if (start + len != s.size() || !py_space(c)) break;
    s.remove_suffix(len);
  }
  return s;
}

std::vector<std::string> py_split(std::string_view s) {
  std::vector<std::string> out;
  std::string word;
  for (size_t i = 0, len = 0; i < s.size(); i += len) {
    const char32_t c = decode_utf8(s, i, len);
    if (py_space(c)) {
      if (!word.empty()) out.push_back(std::move(word));
      word.clear();
    } else {
      word.append(s.substr(i, len));
    }
  }
  if (!word.empty()) out.push_back(std::move(word));
  return out;
}

// --- lm-eval's BBH zero-shot filters -------------------------------------------------------------

constexpr const char* kFallback = "[invalid]";

// Appends `item` to a `sep`-separated list.
void join_to(std::string& list, std::string_view sep, std::string_view item) {
  if (!list.empty()) list += sep;
  list += item;
}

// The first match's first non-empty group (the whole match for a pattern without groups),
// stripped, then mapped through `convert` when it is a key of it; "" when nothing matches. (lm-eval
// takes match number group_select, 0 in every BBH task, of Python's findall: the leftmost one.)
std::string find_match(const Regex& re, std::string_view text,
                       const std::map<std::string, std::string>& convert = {}) {
  const auto m = re.first(text);
  if (!m) return "";
  std::string s(py_strip(*m));
  if (const auto it = convert.find(s); !s.empty() && it != convert.end()) return it->second;
  return s;
}

// The "regex" filter: the match, or the fallback. (With several groups all empty lm-eval also
// falls back; no BBH pattern can match that way.)
std::string regex_extract(const Regex& re, std::string_view response) {
  const auto m = re.first(response);
  return m ? std::string(py_strip(*m)) : kFallback;
}

// Lower case, then every Unicode punctuation character (general category P) removed: the
// multiple-choice filter's ignore_case and ignore_punctuation.
std::string fold(std::string_view s) {
  static const Regex punct("\\p{P}");
  return punct.replace_all(unicode_lower(s), "");
}

// A literal for a PCRE2 pattern: every ASCII character other than a letter, digit or '_' escaped.
std::string escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x80 && !std::isalnum(u) && c != '_') out += '\\';
    out += c;
  }
  return out;
}

// The length of Python's re.escape(s) in code points, which orders the option alternatives.
size_t py_escaped_length(std::string_view s) {
  static constexpr std::string_view kSpecial = "()[]{}?*+-|^$\\.&~# \t\n\r\v\f";
  size_t n = utf8_length(s);
  for (char c : s) n += kSpecial.find(c) != std::string_view::npos;
  return n;
}

// The multiple-choice filter: the first "(X)"; else the first option text found in the folded
// response (longest options tried first), as its letter; else ":" then the option letter.
std::string multiple_choice_extract(std::string_view input, std::string_view response) {
  static const Regex letter("(\\([A-Z]\\))");
  if (std::string m = find_match(letter, response); !m.empty()) return m;

  // The options as lm-eval reads them: the text after each "(X)" up to a newline, '^' or '('.
  static const Regex option("\\([A-Z]\\)([^\\n^(]*)");
  std::vector<std::pair<std::string, size_t>> alternatives;  // escaped text, Python's length
  std::map<std::string, std::string> text_to_letter, letter_to_option;
  std::string letters;
  char next = 'A';
  for (const auto& text : option.find_all(input)) {
    const std::string key = fold(py_strip(text));
    alternatives.emplace_back(escape(key), py_escaped_length(key));
    const std::string target = fmt::format("({})", next);
    text_to_letter[key] = target;  // a repeated option keeps its last letter, as in lm-eval
    letter_to_option[std::string(1, next)] = target;
    join_to(letters, "|", std::string(1, next));
    ++next;
  }
  std::stable_sort(alternatives.begin(), alternatives.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string options;
  for (const auto& [alt, len] : alternatives) join_to(options, "|", alt);
  if (std::string m = find_match(Regex(options), fold(response), text_to_letter); !m.empty())
    return m;
  if (std::string m = find_match(Regex(":[\\s]*(" + letters + ")"), response, letter_to_option);
      !m.empty())
    return m;
  return kFallback;
}

// The yes/no map of sports_understanding and web_of_lies: in the lower-cased response, the first
// match of any pattern, mapped to the value of the first pattern that matches it.
std::string map_extract(const std::vector<std::pair<Regex, std::string>>& rules, const Regex& any,
                        std::string_view response) {
  const std::string whole = find_match(any, unicode_lower(response));
  if (whole.empty()) return kFallback;
  for (const auto& [re, value] : rules)
    if (!find_match(re, unicode_lower(whole)).empty()) return value;
  return kFallback;
}

// English number words as lm-eval's number filter finds them (a pattern it cites from a Reddit
// thread): an optional run of number words, spaces (not line breaks), commas, "and" and "&", then
// a last number word. The three word lists differ in which tens and "eight" forms they allow, and
// the pattern has no word boundaries ("someone" holds "one"); the alternatives' order is the
// original's, so the same text matches.
const Regex& number_words_regex() {
  static const Regex re = [] {
    const std::string units = "zero|one|two|three|four|five";
    const std::string stems = "(?:twen|thir|for|fif|six|seven|nine)";
    const std::string rest = "ten|eleven|twelve|fourteen|hundred|thousand|(?:m|b|tr)illion";
    const std::string first = units + "|" + stems + "(?:teen|ty)|eight(?:|een|y)|" + rest;
    const std::string middle =
        units + "|" + stems + "(?:|teen|ty)|eight(?:een|y)|" + rest + "|[^\\S\\r\\n]|,|and|&";
    const std::string last = units + "|" + stems + "(?:teen|ty)|eight(?:een|y)|" + rest;
    return Regex("((?:(?:" + first + ")(?:" + middle + ")+)?(?:" + last + "))");
  }();
  return re;
}

// The number filter: the first run of digits and '-' ("-" alone counts); else number words.
std::string number_extract(std::string_view response) {
  static const Regex digits("([-0-9]+)");
  if (std::string m = find_match(digits, response); !m.empty()) return m;
  const std::string words = find_match(number_words_regex(), unicode_lower(response));
  if (!words.empty())
    if (auto n = words_to_number(words)) return std::to_string(*n);
  return kFallback;
}

// The word-sorting filter: the list's words found in the response (whole words, case-sensitive),
// each once, ordered by its last occurrence, joined by spaces; "" when none is found.
std::string word_sort_extract(std::string_view input, std::string_view response) {
  const size_t list = input.find("List:");
  if (list == std::string_view::npos) return "";
  std::string_view tail = input.substr(list + 5);
  tail = tail.substr(0, tail.find("List:"));  // Python's split("List:")[1]
  std::string pattern;
  for (const auto& w : py_split(tail)) join_to(pattern, "|", "\\b" + w + "\\b");
  const auto found = Regex(pattern).find_all(response);
  std::vector<std::string> order;  // reversed: last occurrences first
  for (auto it = found.rbegin(); it != found.rend(); ++it)
    if (std::find(order.begin(), order.end(), *it) == order.end()) order.push_back(*it);
  std::string out;
  for (auto it = order.rbegin(); it != order.rend(); ++it) join_to(out, " ", *it);
  return out;
}

// word2number's number_formation: how it combines the words before a multiplier.
std::optional<int64_t> number_formation(const std::vector<int64_t>& n) {
  if (n.empty()) return std::nullopt;  // word2number indexes an empty list and raises
  if (n.size() == 4) return n[0] * n[1] + n[2] + n[3];
  if (n.size() == 3) return n[0] * n[1] + n[2];
  if (n.size() == 2) {
    if (n[0] == 100 || n[1] == 100) return n[0] * n[1];
    return n[0] + n[1];
  }
  return n[0];  // one word, or more than four: the first alone
}

// Which of lm-eval's zero-shot filters a task uses.
enum class FilterKind { Regex, MultipleChoice, Map, Number, WordSort };

struct FlexibleFilter {
  FilterKind kind;
  const char* pattern = nullptr;  // FilterKind::Regex
};

FlexibleFilter flexible_filter(const std::string& task) {
  static const std::unordered_map<std::string, FlexibleFilter> special = {
      {"boolean_expressions", {FilterKind::Regex, "\\b(True|False)\\b"}},
      {"causal_judgement", {FilterKind::Regex, "\\b(Yes|No|yes|no)\\b"}},
      {"navigate", {FilterKind::Regex, "\\b(Yes|No|yes|no)\\b"}},
      {"formal_fallacies", {FilterKind::Regex, "\\b(valid|invalid)\\b"}},
      // The closing brackets after a space, else any run of brackets, quotes and spaces.
      {"dyck_languages",
       {FilterKind::Regex, "(?<= )([\" \\[\\(<{}>\\)\\]]+)|([\" \\[\\(<{}>\\)\\]]+)"}},
      {"multistep_arithmetic_two", {FilterKind::Number}},
      {"object_counting", {FilterKind::Number}},
      {"sports_understanding", {FilterKind::Map}},
      {"web_of_lies", {FilterKind::Map}},
      {"word_sorting", {FilterKind::WordSort}},
  };
  const auto it = special.find(task);
  return it == special.end() ? FlexibleFilter{FilterKind::MultipleChoice} : it->second;
}

struct MapFilter {
  std::vector<std::pair<Regex, std::string>> rules;
  Regex any;
};

MapFilter make_map_filter(const std::vector<std::pair<std::string, std::string>>& rules) {
  std::vector<std::pair<Regex, std::string>> compiled;
  std::string any;
  for (const auto& [pattern, value] : rules) {
    compiled.emplace_back(Regex(pattern), value);
    join_to(any, "|", pattern);
  }
  return {std::move(compiled), Regex(any)};
}

// --- Prompt files ------------------------------------------------------------------------------

// A BBH prompt file: a canary line, "-----", the task description (one paragraph, or two for
// snarks), then three worked examples "Q: {input}\nA: Let's think step by step.{sep}{reasoning}"
// separated by blank lines, where sep is a newline or (sports_understanding) a space, and the
// reasoning ends "So the answer is {answer}.".
struct BbhExample {
  std::string input, reasoning, answer;
};

struct BbhPrompt {
  std::string description;
  std::vector<BbhExample> examples;
};

constexpr std::string_view kThink = "\nA: Let's think step by step.";
constexpr std::string_view kSoTheAnswer = "So the answer is ";

BbhPrompt read_bbh_prompt(const fs::path& file) {
  const std::string text = read_text_file(file);
  const size_t rule = text.find("-----\n");
  if (rule == std::string::npos)
    throw Error(fmt::format("{}: no '-----' line before the prompt", file.string()));
  const std::string body(py_strip(std::string_view(text).substr(rule + 6)));
  BbhPrompt p;
  size_t q = body.find("\n\nQ: ");
  if (q == std::string::npos) throw Error(fmt::format("{}: no 'Q: ' example", file.string()));
  p.description = body.substr(0, q);
  while (q != std::string::npos) {
    const size_t start = q + 5, next = body.find("\n\nQ: ", start);
    const std::string ex = body.substr(start, next == std::string::npos ? next : next - start);
    const size_t a = ex.find(kThink);
    const size_t so = ex.rfind(kSoTheAnswer);
    if (a == std::string::npos || a + kThink.size() >= ex.size() || so == std::string::npos ||
        so < a)
      throw Error(fmt::format(
          "{}: example {} has no \"A: Let's think step by step.\" answer ending \"{}X.\"",
          file.string(), p.examples.size() + 1, kSoTheAnswer));
    // The answer alone, as lm-eval's bbh_fewshot YAMLs give it: after the last "So the answer
    // is ", without the final period (checked equal to all 27 YAMLs' samples).
    std::string answer(py_strip(std::string_view(ex).substr(so + kSoTheAnswer.size())));
    if (!answer.empty() && answer.back() == '.') answer.pop_back();
    p.examples.push_back({ex.substr(0, a), ex.substr(a + kThink.size() + 1), answer});
    q = next;
  }
  return p;
}

// lm-eval's exact_match options of the bbh_zeroshot template: case ignored, and a final period,
// commas, newlines, backslashes and double quotes removed from both sides.
const std::vector<Regex>& zeroshot_ignores() {
  static const std::vector<Regex> ignores = [] {
    std::vector<Regex> v;
    for (const char* p : {"\\.$", ",", "\n", "\\\\", "\""}) v.emplace_back(p);
    return v;
  }();
  return ignores;
}

}  // namespace

const char* bbh_prefix(BbhVariant v) {
  switch (v) {
    case BbhVariant::Reprise:
      return "bbh_";
    case BbhVariant::ZeroShot:
      return "bbh_zeroshot_";
    case BbhVariant::FewShot:
      return "bbh_fewshot_";
    case BbhVariant::CotFewShot:
      return "bbh_cot_fewshot_";
  }
  return "bbh_";
}

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

std::optional<std::pair<BbhVariant, std::string>> parse_bbh_name(const std::string& name) {
  for (BbhVariant v : kBbhVariants)
    for (const auto& t : bbh_task_names())
      if (name == bbh_prefix(v) + t) return std::make_pair(v, t);
  return std::nullopt;
}

std::vector<MetricInfo> bbh_metrics(BbhVariant v) {
  switch (v) {
    case BbhVariant::Reprise:
      return {{"exact_match", MetricKind::Binary, true}};
    // flexible-extract first: it is the metric lm-eval's bbh_zeroshot group reports, and the one
    // a scan should rank by (strict-match wants the bare answer, without the usual leading space).
    case BbhVariant::ZeroShot:
      return {{"exact_match", MetricKind::Binary, true, "flexible-extract"},
              {"exact_match", MetricKind::Binary, true, "strict-match"}};
    case BbhVariant::FewShot:
      return {{"exact_match", MetricKind::Binary, true}};
    case BbhVariant::CotFewShot:
      return {{"exact_match", MetricKind::Binary, true, "get-answer"}};
  }
  return {};
}

std::optional<int64_t> words_to_number(std::string_view words) {
  static const std::unordered_map<std::string, int64_t> value = {
      {"zero", 0},      {"one", 1},         {"two", 2},           {"three", 3},
      {"four", 4},      {"five", 5},        {"six", 6},           {"seven", 7},
      {"eight", 8},     {"nine", 9},        {"ten", 10},          {"eleven", 11},
      {"twelve", 12},   {"thirteen", 13},   {"fourteen", 14},     {"fifteen", 15},
      {"sixteen", 16},  {"seventeen", 17},  {"eighteen", 18},     {"nineteen", 19},
      {"twenty", 20},   {"thirty", 30},     {"forty", 40},        {"fifty", 50},
      {"sixty", 60},    {"seventy", 70},    {"eighty", 80},       {"ninety", 90},
      {"hundred", 100}, {"thousand", 1000}, {"million", 1000000}, {"billion", 1000000000},
  };
  // word2number turns '-' into spaces and drops every word it does not know ("and", "twenty,",
  // "trillion"). Its "point" (decimals) and its all-digits shortcut never meet what the filter's
  // pattern matches, so they are left out.
  std::string text(words);
  std::replace(text.begin(), text.end(), '-', ' ');
  text = unicode_lower(text);
  std::vector<std::string> clean;
  for (auto& w : py_split(text))
    if (value.count(w)) clean.push_back(std::move(w));
  if (clean.empty()) return std::nullopt;
  auto index = [&](const char* w) {
    const auto it = std::find(clean.begin(), clean.end(), w);
    return it == clean.end() ? -1 : static_cast<int>(it - clean.begin());
  };
  for (const char* w : {"thousand", "million", "billion"})
    if (std::count(clean.begin(), clean.end(), w) > 1) return std::nullopt;
  const int bi = index("billion"), mi = index("million"), th = index("thousand");
  if ((th > -1 && (th < mi || th < bi)) || (mi > -1 && mi < bi)) return std::nullopt;
  const int n = static_cast<int>(clean.size());
  auto values = [&](int from, int to) {
    std::vector<int64_t> v;
    for (int k = from; k < to; ++k) v.push_back(value.at(clean[k]));
    return v;
  };
  if (n == 1) return value.at(clean[0]);
  int64_t total = 0;
  if (bi > -1) {
    const auto m = number_formation(values(0, bi));
    if (!m) return std::nullopt;
    total += *m * 1000000000;
  }
  if (mi > -1) {
    const auto m = number_formation(values(bi > -1 ? bi + 1 : 0, mi));
    if (!m) return std::nullopt;
    total += *m * 1000000;
  }
  if (th > -1) {
    const auto m = number_formation(values(mi > -1 ? mi + 1 : bi > -1 ? bi + 1 : 0, th));
    if (!m) return std::nullopt;
    total += *m * 1000;
  }
  // The rest, as word2number picks it: the words after "thousand" unless it is last, else after
  // "million" unless it is last ("two million three thousand" adds "three thousand" again:
  // 2004003), else after "billion", else all of them when there is no multiplier.
  int rest = -2;  // the index the rest follows; -2: no rest
  if (th > -1 && th != n - 1)
    rest = th;
  else if (mi > -1 && mi != n - 1)
    rest = mi;
  else if (bi > -1 && bi != n - 1)
    rest = bi;
  else if (th == -1 && mi == -1 && bi == -1)
    rest = -1;
  if (rest != -2) {
    const auto m = number_formation(values(rest + 1, n));
    if (!m) return std::nullopt;
    total += *m;
  }
  return total;
}

std::string bbh_flexible_extract(const std::string& task, std::string_view input,
                                 std::string_view response) {
  const FlexibleFilter f = flexible_filter(task);
  switch (f.kind) {
    case FilterKind::Regex: {
      // One compiled pattern per task, kept for the process.
      static std::mutex mu;
      static std::map<std::string, Regex> compiled;
      const Regex* re = nullptr;
      {
        std::lock_guard lock(mu);
        re = &compiled.try_emplace(f.pattern, f.pattern).first->second;
      }
      return regex_extract(*re, response);
    }
    case FilterKind::MultipleChoice:
      return multiple_choice_extract(input, response);
    case FilterKind::Number:
      return number_extract(response);
    case FilterKind::WordSort:
      return word_sort_extract(input, response);
    case FilterKind::Map: {
      static const MapFilter sports =
          make_map_filter({{"\\b(no|not plausible)\\b", "no"}, {"\\b(yes|plausible)\\b", "yes"}});
      static const MapFilter web_of_lies =
          make_map_filter({{"\\b(no|does not tell the truth|is not telling the truth)\\b", "no"},
                           {"\\b(yes|tells the truth|is telling the truth)\\b", "yes"}});
      const MapFilter& m = task == "web_of_lies" ? web_of_lies : sports;
      return map_extract(m.rules, m.any, response);
    }
  }
  return kFallback;
}

namespace {

// What comes before each question and after it. lm-eval's prompts: the description and "\n\n",
// then for each example its question, the target delimiter " ", its answer (worked, for CoT) and
// the few-shot delimiter "\n\n", then the question. reprise's own bbh_<task> keeps the
// description's first line only.
struct PromptFrame {
  std::string prefix;
  std::string cue = "\nA:";
};

PromptFrame prompt_frame(BbhVariant variant, const BbhPrompt& prompt) {
  PromptFrame f;
  switch (variant) {
    case BbhVariant::Reprise:
      f.prefix = prompt.description.substr(0, prompt.description.find('\n')) + "\n\n";
      break;
    case BbhVariant::ZeroShot:
      f.prefix = prompt.description + "\n\n";
      break;
    case BbhVariant::FewShot:
      f.prefix = prompt.description + "\n\n";
      for (const auto& ex : prompt.examples)
        f.prefix += "Q: " + ex.input + "\nA: " + ex.answer + "\n\n";
      break;
    case BbhVariant::CotFewShot:
      f.prefix = prompt.description + "\n\n";
      for (const auto& ex : prompt.examples)
        f.prefix += "Q: " + ex.input + std::string(kThink) + "\n" + " " + ex.reasoning + "\n\n";
      f.cue = std::string(kThink) + "\n";
      break;
  }
  return f;
}

// How a variant generates and scores: its metrics, stop strings, budget and lm-eval version.
struct Scoring {
  std::vector<GenMetric> metrics;
  std::vector<std::string> stop;
  std::string description;
  int max_tokens = 256;  // lm-eval's default max_gen_toks
  double version = 0;    // 0: not an lm-eval task
  int num_fewshot = 0;
};

// `inputs`: the questions by item id, for the filters that read the options or the word list.
Scoring variant_scoring(
    BbhVariant variant, const std::string& task,
    const std::shared_ptr<std::unordered_map<std::string, std::string>>& inputs) {
  const std::vector<MetricInfo> infos = bbh_metrics(variant);
  Scoring s;
  switch (variant) {
    case BbhVariant::Reprise:
      s.metrics.push_back(
          {infos[0], [](const std::string& out, const GenItem& item, std::string& extracted) {
             const AnswerFormat f = answer_format_of(item.gold);
             extracted = extract_answer(out, f);
             return answer_matches(extracted, item.gold, f) ? 1.0 : 0.0;
           }});
      s.stop = {"\n\n", "\nQ:"};
      s.max_tokens = 128;
      s.description =
          fmt::format("BIG-Bench Hard {}, zero-shot (reprise's answer extraction)", task);
      break;
    case BbhVariant::ZeroShot:
      s.metrics.push_back(
          {infos[0],
           [task, inputs](const std::string& out, const GenItem& item, std::string& extracted) {
             extracted = bbh_flexible_extract(task, inputs->at(item.id), out);
             return exact_match(extracted, item.gold, zeroshot_ignores(), /*ignore_case=*/true)
                        ? 1.0
                        : 0.0;
           }});
      // take_first: the response as it is.
      s.metrics.push_back(
          {infos[1], [](const std::string& out, const GenItem& item, std::string& extracted) {
             extracted = out;
             return exact_match(out, item.gold, zeroshot_ignores(), /*ignore_case=*/true) ? 1.0
                                                                                          : 0.0;
           }});
      s.stop = {"</s>", "Q:", "<|im_end|>"};
      s.description = fmt::format("BIG-Bench Hard {}, lm-eval's zero-shot", task);
      s.version = 3.0;
      break;
    case BbhVariant::FewShot:
      s.metrics.push_back(
          {infos[0], [](const std::string& out, const GenItem& item, std::string& extracted) {
             extracted = out;
             return exact_match(out, item.gold, {}, /*ignore_case=*/false) ? 1.0 : 0.0;
           }});
      s.stop = {"</s>", "Q", "\n\n"};
      s.description = fmt::format("BIG-Bench Hard {}, lm-eval's three-shot answers", task);
      s.version = 2.0;
      s.num_fewshot = 3;
      break;
    case BbhVariant::CotFewShot: {
      // lm-eval's "get-answer" filter, then a case-sensitive exact match with nothing ignored.
      auto re = std::make_shared<Regex>("(?<=the answer is )(.*)(?=.)");
      s.metrics.push_back(
          {infos[0], [re](const std::string& out, const GenItem& item, std::string& extracted) {
             extracted = regex_filter(out, *re, 0);
             return exact_match(extracted, item.gold, {}, /*ignore_case=*/false) ? 1.0 : 0.0;
           }});
      s.stop = {"</s>", "Q", "\n\n"};
      s.max_tokens = 1024;  // the CoT template's max_gen_toks
      s.description = fmt::format("BIG-Bench Hard {}, lm-eval's three-shot chain of thought", task);
      s.version = 3.0;
      s.num_fewshot = 3;
      break;
    }
  }
  return s;
}

}  // namespace

std::unique_ptr<Task> load_bbh(const fs::path& data_dir, const std::string& task,
                               BbhVariant variant) {
  const fs::path data = data_dir / "bbh" / "bbh" / (task + ".json");
  const std::string name = bbh_prefix(variant) + task;
  const PromptFrame frame =
      prompt_frame(variant, read_bbh_prompt(data_dir / "bbh" / "cot-prompts" / (task + ".txt")));

  const nlohmann::json doc = read_json_file(data);
  if (!doc.contains("examples") || !doc["examples"].is_array())
    throw Error(fmt::format("{}: needs \"examples\" (a list)", data.string()));
  std::vector<GenItem> items;
  auto inputs = std::make_shared<std::unordered_map<std::string, std::string>>();
  for (const auto& ex : doc["examples"]) {
    const std::string at = fmt::format("{}: example {}", data.string(), items.size());
    GenItem it;
    it.id = fmt::format("{}/{}", name, items.size());
    const std::string input = json_string(ex, "input", at);
    it.context = frame.prefix + "Q: " + input + frame.cue;
    it.gold = json_string(ex, "target", at);
    (*inputs)[it.id] = input;
    items.push_back(std::move(it));
  }

  Scoring s = variant_scoring(variant, task, inputs);
  auto t = std::make_unique<GenerationTask>(name, std::move(s.description), std::move(items),
                                            std::move(s.stop), s.max_tokens, std::move(s.metrics));
  if (s.version > 0) t->set_version(s.version);
  if (s.num_fewshot > 0) t->set_num_fewshot(s.num_fewshot);
  return t;
}

}  // namespace reprise::eval
