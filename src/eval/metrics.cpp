#include "eval/metrics.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>

#include "eval/regex.h"
#include "util/error.h"
#include "util/strings.h"

namespace reprise::eval {
namespace {

size_t argmax(std::span<const double> v) {
  return static_cast<size_t>(std::max_element(v.begin(), v.end()) - v.begin());
}

// a - b for equal-length digit strings with a >= b, as a digit string.
std::string subtract_digits(const std::string& a, const std::string& b) {
  std::string out(a.size(), '0');
  int borrow = 0;
  for (size_t k = a.size(); k-- > 0;) {
    int d = (a[k] - '0') - (b[k] - '0') - borrow;
    borrow = d < 0;
    out[k] = static_cast<char>('0' + (d + 10) % 10);
  }
  return out;
}

long double digits_value(const std::string& s) {
  long double v = 0;
  for (char c : s) v = v * 10 + (c - '0');
  return v;
}

}  // namespace

size_t utf8_length(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s) n += (c & 0xC0) != 0x80;
  return n;
}

ChoiceScore score_choices(std::span<const double> loglik, std::span<const std::string> choices,
                          size_t gold) {
  if (loglik.empty() || loglik.size() != choices.size())
    throw Error(fmt::format("{} log-likelihoods for {} choices", loglik.size(), choices.size()));
  if (gold >= choices.size())
    throw Error(fmt::format("gold index {} out of range ({} choices)", gold, choices.size()));
  std::vector<double> norm(loglik.size());
  for (size_t k = 0; k < loglik.size(); ++k)
    norm[k] = loglik[k] / static_cast<double>(std::max<size_t>(1, utf8_length(choices[k])));
  ChoiceScore s;
  s.pred = argmax(loglik);
  s.pred_norm = argmax(norm);
  s.acc = s.pred == gold;
  s.acc_norm = s.pred_norm == gold;
  return s;
}

std::string normalize_number(std::string_view s) {
  std::string t;
  bool negative = false, seen_digit = false;
  for (char c : s) {
    if (c == '-' && !seen_digit && t.empty()) negative = true;
    if (std::isdigit(static_cast<unsigned char>(c))) seen_digit = true;
    if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') t += c;
  }
  if (!seen_digit) return "";
  while (!t.empty() && t.back() == '.') t.pop_back();
  if (t.find('.') != std::string::npos) {
    while (t.back() == '0') t.pop_back();
    if (t.back() == '.') t.pop_back();
  }
  // Leading zeros carry no meaning ("007" is 7), but keep one before a decimal point.
  size_t z = 0;
  while (z + 1 < t.size() && t[z] == '0' && t[z + 1] != '.') ++z;
  t.erase(0, z);
  if (t.empty() || t == "0") return "0";
  return negative ? "-" + t : t;
}

std::optional<std::string> first_integer(std::string_view text) {
  static const Regex re(R"(-?\d+(?:,\d{3})*)");
  auto m = re.first(text);
  if (!m) return std::nullopt;
  return normalize_number(*m);
}

std::optional<std::string> last_number(std::string_view text) {
  static const Regex re(R"(-?\$?\d+(?:,\d{3})*(?:\.\d+)?)");
  auto m = re.last(text);
  if (!m) return std::nullopt;
  return normalize_number(*m);
}

std::string regex_filter(std::string_view response, const Regex& pattern, int group_select) {
  const auto all = pattern.find_all(response);
  const int n = static_cast<int>(all.size());
  const int k = group_select < 0 ? n + group_select : group_select;
  if (k < 0 || k >= n || all[k].empty()) return kNoMatch;
  return std::string(trim(all[k]));
}

bool exact_match(std::string prediction, std::string reference, std::span<const Regex> ignore,
                 bool ignore_case) {
  for (const Regex& re : ignore) {
    prediction = re.replace_all(prediction, "");
    reference = re.replace_all(reference, "");
  }
  if (ignore_case) return to_lower(prediction) == to_lower(reference);
  return prediction == reference;
}

double rys_score(std::string_view gold, std::string_view pred) {
  auto magnitude = [](std::string_view s, bool& negative) {
    std::string n = normalize_number(s);
    negative = !n.empty() && n[0] == '-';
    if (negative) n.erase(0, 1);
    const size_t dot = n.find('.');
    if (dot != std::string::npos) n.resize(dot);  // integer answers: drop any fraction
    return n.empty() ? std::string("0") : n;
  };
  if (normalize_number(pred).empty() || normalize_number(gold).empty()) return 0.0;
  bool neg_g = false, neg_p = false;
  std::string g = magnitude(gold, neg_g), p = magnitude(pred, neg_p);
  if (neg_g != neg_p) return 0.0;
  const size_t L = std::max(g.size(), p.size());
  const size_t pad = L - std::min(g.size(), p.size());
  g.append(L - g.size(), '0');
  p.append(L - p.size(), '0');
  const std::string& hi = std::max(g, p);  // equal lengths: string order is numeric order
  const std::string& lo = std::min(g, p);
  const long double top = digits_value(hi);
  const long double rel = top == 0 ? 0.0L : digits_value(subtract_digits(hi, lo)) / top;
  const double s = static_cast<double>((1.0L - rel) * (1.0L - static_cast<long double>(pad) / L));
  return std::clamp(s, 0.0, 1.0);
}

AnswerFormat answer_format_of(std::string_view target) {
  static const Regex letter(R"(^\([A-Z]\)$)");
  static const Regex integer(R"(^-?\d+$)");
  const std::string t = to_lower(trim(target));
  if (letter.first(trim(target))) return AnswerFormat::Letter;
  if (t == "true" || t == "false") return AnswerFormat::TrueFalse;
  if (t == "yes" || t == "no") return AnswerFormat::YesNo;
  if (t == "valid" || t == "invalid") return AnswerFormat::Validity;
  if (integer.first(t)) return AnswerFormat::Integer;
  return AnswerFormat::Text;
}

std::string extract_answer(std::string_view output, AnswerFormat format) {
  switch (format) {
    case AnswerFormat::Letter: {
      static const Regex paren(R"(\(([A-Z])\))");
      static const Regex bare(R"(^\s*([A-Z])(?:\b|$))");
      if (auto m = paren.first(output)) return "(" + *m + ")";
      if (auto m = bare.first(output)) return "(" + *m + ")";
      return "";
    }
    case AnswerFormat::TrueFalse: {
      static const Regex re(R"(\b(true|false)\b)", /*caseless=*/true);
      return re.first(output).value_or("");
    }
    case AnswerFormat::YesNo: {
      static const Regex re(R"(\b(yes|no)\b)", /*caseless=*/true);
      return re.first(output).value_or("");
    }
    case AnswerFormat::Validity: {
      static const Regex re(R"(\b(invalid|valid)\b)", /*caseless=*/true);
      return re.first(output).value_or("");
    }
    case AnswerFormat::Integer:
      return first_integer(output).value_or("");
    case AnswerFormat::Text: {
      std::string_view line = trim(output);
      line = line.substr(0, line.find('\n'));
      std::string out;
      for (char c : line) {
        const bool space = std::isspace(static_cast<unsigned char>(c));
        if (space && (out.empty() || out.back() == ' ')) continue;
        out += space ? ' ' : c;
      }
      while (!out.empty() && (out.back() == ' ' || out.back() == '.')) out.pop_back();
      return out;
    }
  }
  return "";
}

bool answer_matches(std::string_view extracted, std::string_view target, AnswerFormat format) {
  if (extracted.empty()) return false;
  switch (format) {
    case AnswerFormat::TrueFalse:
    case AnswerFormat::YesNo:
    case AnswerFormat::Validity:
      return to_lower(extracted) == to_lower(trim(target));
    case AnswerFormat::Integer:
      return normalize_number(extracted) == normalize_number(trim(target));
    case AnswerFormat::Letter:
      return extracted == trim(target);
    case AnswerFormat::Text:
      return extracted == extract_answer(target, AnswerFormat::Text);
  }
  return false;
}

std::optional<std::array<double, 4>> eqbench_parse(std::string_view output,
                                                   const EqReference& ref) {
  std::string_view section = output;
  const size_t at = to_lower(output).rfind("revised scores:");
  if (at != std::string::npos) section = output.substr(at);
  std::array<double, 4> out{};
  for (size_t k = 0; k < 4; ++k) {
    std::string name;
    for (char c : ref.emotions[k]) {  // emotion names are words; escape anything else
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != ' ') name += '\\';
      name += c;
    }
    const Regex re("(?:^|\\n)[ \\t*]*" + name + "[ \\t*]*:[ \\t*]*(\\d+(?:\\.\\d+)?)",
                   /*caseless=*/true);
    auto m = re.last(section);
    if (!m) return std::nullopt;
    out[k] = std::stod(*m);
  }
  return out;
}

double eqbench_score(const std::array<double, 4>& pred, const EqReference& ref) {
  double tally = 0;
  for (size_t k = 0; k < 4; ++k) {
    const double d = std::fabs(pred[k] - ref.scores[k]);
    if (d == 0) continue;
    tally += d <= 5 ? 6.5 / (1.0 + std::exp(-1.2 * (d - 4.0))) : d;
  }
  return 10.0 * (10.0 - 0.7477 * tally);
}

DigitScore score_digits(std::span<const double> probs, int gold) {
  if (probs.size() != 10) throw Error(fmt::format("{} digit probabilities, need 10", probs.size()));
  if (gold < 0 || gold > 9) throw Error(fmt::format("digit gold {} is not 0-9", gold));
  DigitScore s;
  for (int d = 0; d < 10; ++d) s.expected += d * probs[d];
  s.score = 1.0 - std::fabs(s.expected - gold) / 9.0;
  s.acc = static_cast<int>(argmax(probs)) == gold;
  s.p_gold = probs[gold];
  return s;
}

}  // namespace reprise::eval
