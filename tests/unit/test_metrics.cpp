// Scoring rules against hand-computed values.
#include <gtest/gtest.h>

#include <cmath>

#include "eval/metrics.h"
#include "util/error.h"

namespace reprise::eval {
namespace {

TEST(Metrics, AccAndLengthNormalisedAcc) {
  // Raw argmax is choice 2 (-9.5); per character: -10/1, -12/4 = -3, -9.5/2 = -4.75 -> choice 1.
  const std::vector<double> ll = {-10, -12, -9.5};
  const std::vector<std::string> choices = {"a", "bbbb", "cc"};
  ChoiceScore s = score_choices(ll, choices, 1);
  EXPECT_EQ(s.pred, 2u);
  EXPECT_EQ(s.pred_norm, 1u);
  EXPECT_EQ(s.acc, 0.0);
  EXPECT_EQ(s.acc_norm, 1.0);
  s = score_choices(ll, choices, 2);
  EXPECT_EQ(s.acc, 1.0);
  EXPECT_EQ(s.acc_norm, 0.0);
  // Ties go to the first option.
  EXPECT_EQ(score_choices(std::vector<double>{-1, -1}, std::vector<std::string>{"x", "y"}, 0).pred,
            0u);
  EXPECT_THROW(score_choices(ll, choices, 3), Error);
}

TEST(Metrics, LengthCountsCharactersNotBytes) {
  EXPECT_EQ(utf8_length("caf\xc3\xa9"), 4u);  // "café": 5 bytes, 4 characters
  // "ééé" is 3 characters (6 bytes), "ab" 2. Per character -5/3 = -1.67 < -3.2/2 = -1.6, so
  // choice 1 wins; per byte (-5/6 = -0.83) choice 0 would.
  const std::vector<std::string> choices = {"\xc3\xa9\xc3\xa9\xc3\xa9", "ab"};
  EXPECT_EQ(score_choices(std::vector<double>{-5, -3.2}, choices, 0).pred_norm, 1u);
}

TEST(Metrics, RysScoreByHand) {
  EXPECT_DOUBLE_EQ(rys_score("12345", "12345"), 1.0);
  EXPECT_NEAR(rys_score("12345", "12340"), 1.0 - 5.0 / 12345, 1e-12);
  // "1234" is padded to 12340 (one zero of five digits): (1 - 5/12345) * (1 - 1/5).
  EXPECT_NEAR(rys_score("12345", "1234"), 0.8 * (1.0 - 5.0 / 12345), 1e-12);
  // 100 vs "99" padded to 990: (1 - 890/990) * (1 - 1/3).
  EXPECT_NEAR(rys_score("100", "99"), (1.0 - 890.0 / 990) * (2.0 / 3), 1e-12);
  EXPECT_DOUBLE_EQ(rys_score("1234", "1,234"), 1.0);
  EXPECT_DOUBLE_EQ(rys_score("0", "0"), 1.0);
  EXPECT_DOUBLE_EQ(rys_score("0", "5"), 0.0);
  EXPECT_DOUBLE_EQ(rys_score("42", ""), 0.0);
  EXPECT_DOUBLE_EQ(rys_score("42", "none"), 0.0);
  EXPECT_DOUBLE_EQ(rys_score("-42", "42"), 0.0);
  EXPECT_DOUBLE_EQ(rys_score("-42", "-42"), 1.0);
  // Beyond 64 bits: digits are subtracted exactly, so a difference of 678901234 out of
  // 1.23e23 still shows.
  const double s = rys_score("123456789012345678901234", "123456789012345000000000");
  EXPECT_LT(s, 1.0);
  EXPECT_NEAR(s, 1.0 - 678901234.0 / 1.23456789012345678901234e23, 1e-16);
  // Symmetric in which side is padded.
  EXPECT_NEAR(rys_score("1234", "12345"), rys_score("12345", "1234"), 1e-15);
}

TEST(Metrics, NumberNormalisationAndExtraction) {
  EXPECT_EQ(normalize_number("$1,234.50"), "1234.5");
  EXPECT_EQ(normalize_number("18."), "18");
  EXPECT_EQ(normalize_number("-0"), "0");
  EXPECT_EQ(normalize_number("007"), "7");
  EXPECT_EQ(normalize_number("0.50"), "0.5");
  EXPECT_EQ(normalize_number("-3.000"), "-3");
  EXPECT_EQ(normalize_number("abc"), "");
  EXPECT_EQ(first_integer("I think 42 or 43").value(), "42");
  EXPECT_EQ(first_integer("it is -17 degrees").value(), "-17");
  EXPECT_EQ(first_integer("about 1,234,567 people").value(), "1234567");
  EXPECT_FALSE(first_integer("no digits").has_value());
  EXPECT_EQ(last_number("3 apples cost $1,234.00.").value(), "1234");
}

// lm-eval's regex filter and exact_match, with the values Python's re.findall / re.sub give.
TEST(Metrics, LmEvalRegexFilterAndExactMatch) {
  const Regex strict("#### (\\-?[0-9\\.\\,]+)");
  const Regex flexible("(-?[$0-9.,]{2,})|(-?[0-9]+)");
  EXPECT_EQ(regex_filter("So 6 + 36 = 42.\n#### 42", strict), "42");
  EXPECT_EQ(regex_filter("The answer is 42.", strict), kNoMatch);
  // Two groups: each match's first non-empty group; group_select -1 takes the last match.
  EXPECT_EQ(flexible.find_all("3 + 4 = 7, then $1,234.00."),
            (std::vector<std::string>{"3", "4", "7,", "$1,234.00."}));
  EXPECT_EQ(regex_filter("First 3 + 4 = 7, then 7 * 6 = 42.", flexible, -1), "42.");
  EXPECT_EQ(regex_filter("I do not know.", flexible, -1), kNoMatch);
  EXPECT_EQ(regex_filter("a 5 b", flexible, 3), kNoMatch);    // no fourth match
  EXPECT_EQ(Regex("\\.$").replace_all("18.\n", ""), "18\n");  // $ before a final newline
  EXPECT_EQ(Regex(",").replace_all("1,234,5", ""), "12345");
  std::vector<Regex> ignore;
  for (const char* p : {",", "\\$", "(?s).*#### ", "\\.$"}) ignore.emplace_back(p);
  const std::string gold = "She sells 16 - 3 = <<16-3=13>>13 eggs.\n#### 1,234";
  EXPECT_TRUE(exact_match("1,234", gold, ignore, true));
  EXPECT_TRUE(exact_match("$1234.", gold, ignore, true));
  EXPECT_FALSE(exact_match("1234.0", gold, ignore, true));
  EXPECT_FALSE(exact_match(kNoMatch, gold, ignore, true));
  EXPECT_TRUE(exact_match("TRUE", "True", {}, true));
  EXPECT_FALSE(exact_match("TRUE", "True", {}, false));
}

TEST(Metrics, BbhAnswerFormats) {
  EXPECT_EQ(answer_format_of("(C)"), AnswerFormat::Letter);
  EXPECT_EQ(answer_format_of("True"), AnswerFormat::TrueFalse);
  EXPECT_EQ(answer_format_of("no"), AnswerFormat::YesNo);
  EXPECT_EQ(answer_format_of("invalid"), AnswerFormat::Validity);
  EXPECT_EQ(answer_format_of("-11520"), AnswerFormat::Integer);
  EXPECT_EQ(answer_format_of("] ]"), AnswerFormat::Text);
  EXPECT_EQ(answer_format_of("Monsters, Inc"), AnswerFormat::Text);

  EXPECT_EQ(extract_answer(" The answer is (B).", AnswerFormat::Letter), "(B)");
  EXPECT_EQ(extract_answer(" B", AnswerFormat::Letter), "(B)");
  EXPECT_EQ(extract_answer(" Because", AnswerFormat::Letter), "");
  EXPECT_TRUE(answer_matches(extract_answer(" false, since", AnswerFormat::TrueFalse), "False",
                             AnswerFormat::TrueFalse));
  EXPECT_EQ(extract_answer(" Nope.", AnswerFormat::YesNo), "");
  EXPECT_TRUE(
      answer_matches(extract_answer(" No.", AnswerFormat::YesNo), "No", AnswerFormat::YesNo));
  EXPECT_TRUE(
      answer_matches(extract_answer(" yes", AnswerFormat::YesNo), "Yes", AnswerFormat::YesNo));
  EXPECT_EQ(extract_answer("The argument is invalid.", AnswerFormat::Validity), "invalid");
  EXPECT_FALSE(answer_matches("invalid", "valid", AnswerFormat::Validity));
  EXPECT_EQ(extract_answer(" There are 8 items.", AnswerFormat::Integer), "8");
  EXPECT_EQ(extract_answer("  apple   banana cherry.\nmore", AnswerFormat::Text),
            "apple banana cherry");
  EXPECT_TRUE(answer_matches("] ]", "] ]", AnswerFormat::Text));
  EXPECT_FALSE(answer_matches("", "] ]", AnswerFormat::Text));
}

TEST(Metrics, EqBenchParseAndScore) {
  EqReference ref;
  ref.emotions = {"Remorseful", "Indifferent", "Affectionate", "Annoyed"};
  ref.scores = {2, 3, 0, 5};
  const std::string out =
      "First pass scores:\nRemorseful: 9\nIndifferent: 9\nAffectionate: 9\nAnnoyed: 9\n\n"
      "Critique: too high.\n\nRevised scores:\nRemorseful: 2\nIndifferent: 3\nAffectionate: 0\n"
      "Annoyed: 6\n";
  const auto p = eqbench_parse(out, ref);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ((*p)[0], 2);
  EXPECT_EQ((*p)[3], 6);
  // One emotion off by 1: cost 6.5 / (1 + e^3.6); score 10 * (10 - 0.7477 * cost).
  EXPECT_NEAR(eqbench_score(*p, ref), 10 * (10 - 0.7477 * 6.5 / (1 + std::exp(3.6))), 1e-12);
  EXPECT_NEAR(eqbench_score({2, 3, 0, 5}, ref), 100.0, 1e-12);
  EXPECT_NEAR(eqbench_score({2, 3, 6, 5}, ref), 10 * (10 - 0.7477 * 6), 1e-12);  // d > 5: cost d
  // Without revised scores the first pass counts; a missing emotion makes it unparseable.
  EXPECT_TRUE(eqbench_parse("remorseful: 1\nIndifferent: 2\nAffectionate: 3\nAnnoyed: 4", ref));
  EXPECT_FALSE(eqbench_parse("Remorseful: 1\nIndifferent: 2\nAnnoyed: 4", ref));
}

TEST(Metrics, DigitExpectation) {
  std::vector<double> p(10, 0.0);
  p[3] = 0.5;
  p[5] = 0.5;
  DigitScore s = score_digits(p, 4);
  EXPECT_DOUBLE_EQ(s.expected, 4.0);
  EXPECT_DOUBLE_EQ(s.score, 1.0);
  EXPECT_EQ(s.acc, 0.0);  // the mode is 3 (first of the tie), not 4
  EXPECT_EQ(s.p_gold, 0.0);
  s = score_digits(p, 0);
  EXPECT_NEAR(s.score, 1.0 - 4.0 / 9, 1e-15);
  s = score_digits(p, 3);
  EXPECT_EQ(s.acc, 1.0);
  EXPECT_EQ(s.p_gold, 0.5);
  EXPECT_THROW(score_digits(std::vector<double>(9, 0.1), 1), Error);
  EXPECT_THROW(score_digits(p, 10), Error);
}

}  // namespace
}  // namespace reprise::eval
