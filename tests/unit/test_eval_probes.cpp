// The seeded probes: reproducible, and every item's answer checked by an independent solver
// working from the item's text alone.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <numeric>
#include <regex>

#include "eval/probes.h"

namespace reprise::eval {
namespace {

TEST(EvalProbes, SameSeedSameItemsOtherSeedOtherItems) {
  for (size_t i = 0; i < 20; ++i) {
    EXPECT_EQ(math_probe_item(1234, 4, i).question, math_probe_item(1234, 4, i).question);
    EXPECT_EQ(logic_probe_item(1234, 5, i).context, logic_probe_item(1234, 5, i).context);
    EXPECT_EQ(chain_probe_item(1234, 4, i).context, chain_probe_item(1234, 4, i).context);
  }
  int same = 0;
  for (size_t i = 0; i < 20; ++i)
    same += math_probe_item(1234, 4, i).question == math_probe_item(99, 4, i).question;
  EXPECT_LT(same, 2);
}

TEST(EvalProbes, GeneratorIsPinned) {
  // Pins the generator: if this changes, every probe item anyone generated changes with it.
  const MathProbeItem m = math_probe_item(1234, 4, 0);
  const ChainProbeItem c = chain_probe_item(1234, 2, 0);
  EXPECT_EQ(m.question + " " + m.answer, "What is 5856 * 5436? 31833216");
  EXPECT_EQ(c.context, "Start with 6, subtract 6, then add 5. The result is");
}

// Evaluates "What is A * B?", "What is the square/cube root of N?", "What is A + B + ...?"
// with integer arithmetic of its own.
std::string solve_math(const std::string& q) {
  std::smatch m;
  if (std::regex_match(q, m, std::regex(R"(What is (\d+) \* (\d+)\?)"))) {
    return std::to_string(std::stoull(m[1]) * std::stoull(m[2]));
  }
  if (std::regex_match(q, m, std::regex(R"(What is the (square|cube) root of (\d+)\?)"))) {
    const unsigned long long n = std::stoull(m[2]);
    const int k = m[1] == "square" ? 2 : 3;
    auto r =
        static_cast<unsigned long long>(std::llround(std::pow(static_cast<double>(n), 1.0 / k)));
    for (unsigned long long c = r > 2 ? r - 2 : 0; c <= r + 2; ++c) {
      unsigned long long p = 1;
      for (int e = 0; e < k; ++e) p *= c;
      if (p == n) return std::to_string(c);
    }
    return "not a perfect power";
  }
  if (std::regex_match(q, std::regex(R"(What is \d+( \+ \d+)+\?)"))) {
    unsigned long long s = 0;
    const std::regex num(R"(\d+)");
    for (auto it = std::sregex_iterator(q.begin(), q.end(), num); it != std::sregex_iterator();
         ++it)
      s += std::stoull(it->str());
    return std::to_string(s);
  }
  return "unparsed: " + q;
}

TEST(EvalProbes, MathAnswersAreRight) {
  for (int d = 1; d <= 9; ++d)
    for (size_t i = 0; i < 30; ++i) {
      const MathProbeItem it = math_probe_item(7, d, i);
      EXPECT_EQ(solve_math(it.question), it.answer) << it.question;
    }
  // Difficulty is the operand length.
  EXPECT_TRUE(std::regex_match(math_probe_item(7, 6, 0).question,
                               std::regex(R"(What is \d{6} \* \d{6}\?)")));
}

// Reads the puzzle's statements back from its text and finds every order they allow.
std::vector<std::vector<std::string>> solve_logic(const LogicProbeItem& it) {
  std::vector<std::string> names;
  for (const auto& c : it.choices) names.push_back(c.substr(4, c.size() - 9));  // "The X book"
  const int n = static_cast<int>(names.size());
  const std::map<std::string, int> ordinal = {{"first", 0},  {"second", 1}, {"third", 2},
                                              {"fourth", 3}, {"fifth", 4},  {"sixth", 5},
                                              {"seventh", 6}};
  std::vector<std::function<bool(const std::map<std::string, int>&)>> rules;
  const std::regex sentence(R"(The (\w+) book is ([^.]+)\.)");
  for (auto s = std::sregex_iterator(it.context.begin(), it.context.end(), sentence);
       s != std::sregex_iterator(); ++s) {
    const std::string x = (*s)[1], rest = (*s)[2];
    std::smatch m;
    if (std::regex_match(rest, m, std::regex(R"(to the left of the (\w+) book)"))) {
      const std::string y = m[1];
      rules.push_back([x, y](const auto& pos) { return pos.at(x) < pos.at(y); });
    } else if (std::regex_match(rest, m, std::regex(R"(to the right of the (\w+) book)"))) {
      const std::string y = m[1];
      rules.push_back([x, y](const auto& pos) { return pos.at(x) > pos.at(y); });
    } else if (rest == "the leftmost") {
      rules.push_back([x](const auto& pos) { return pos.at(x) == 0; });
    } else if (rest == "the rightmost") {
      rules.push_back([x, n](const auto& pos) { return pos.at(x) == n - 1; });
    } else if (std::regex_match(rest, m, std::regex(R"(the (\w+) from the (left|right))"))) {
      const int k = ordinal.at(m[1]);
      const bool left = m[2] == "left";
      rules.push_back(
          [x, k, left, n](const auto& pos) { return pos.at(x) == (left ? k : n - 1 - k); });
    } else {
      ADD_FAILURE() << "unparsed statement: " << rest;
    }
  }
  std::vector<std::vector<std::string>> orders;
  std::vector<int> perm(n);
  std::iota(perm.begin(), perm.end(), 0);
  do {
    std::map<std::string, int> pos;
    for (int p = 0; p < n; ++p) pos[names[perm[p]]] = p;
    bool ok = true;
    for (const auto& r : rules) ok = ok && r(pos);
    if (ok) {
      std::vector<std::string> o;
      for (int p = 0; p < n; ++p) o.push_back(names[perm[p]]);
      orders.push_back(o);
    }
  } while (std::next_permutation(perm.begin(), perm.end()));
  return orders;
}

TEST(EvalProbes, LogicPuzzlesHaveExactlyOneSolutionAndTheRightGold) {
  const std::map<std::string, int> ordinal = {{"first", 0},  {"second", 1}, {"third", 2},
                                              {"fourth", 3}, {"fifth", 4},  {"sixth", 5},
                                              {"seventh", 6}};
  for (int n = 3; n <= 7; ++n)
    for (size_t i = 0; i < 8; ++i) {
      const LogicProbeItem it = logic_probe_item(11, n, i);
      ASSERT_EQ(it.choices.size(), static_cast<size_t>(n));
      const auto orders = solve_logic(it);
      ASSERT_EQ(orders.size(), 1u) << it.context;
      std::smatch m;
      ASSERT_TRUE(std::regex_search(it.context, m, std::regex(R"(Which book is the (\w+) from)")));
      const std::string at = orders[0][ordinal.at(m[1])];
      EXPECT_EQ(it.choices[it.gold], "The " + at + " book") << it.context;
    }
}

TEST(EvalProbes, ChainsStayOnDigitsAndEndAtTheAnswer) {
  const std::regex start(R"(^Start with (\d))");
  const std::regex op(R"((add|subtract|multiply by|divide by) (\d))");
  for (int steps = 1; steps <= 12; ++steps)
    for (size_t i = 0; i < 20; ++i) {
      const ChainProbeItem it = chain_probe_item(5, steps, i);
      std::smatch m;
      ASSERT_TRUE(std::regex_search(it.context, m, start)) << it.context;
      int v = std::stoi(m[1]);
      int count = 0;
      for (auto s = std::sregex_iterator(it.context.begin(), it.context.end(), op);
           s != std::sregex_iterator(); ++s, ++count) {
        const std::string verb = (*s)[1];
        const int k = std::stoi((*s)[2]);
        if (verb == "add") v += k;
        if (verb == "subtract") v -= k;
        if (verb == "multiply by") v *= k;
        if (verb == "divide by") {
          ASSERT_EQ(v % k, 0) << it.context;
          v /= k;
        }
        ASSERT_GE(v, 0) << it.context;
        ASSERT_LE(v, 9) << it.context;
      }
      EXPECT_EQ(count, steps);
      EXPECT_EQ(v, it.answer) << it.context;
      EXPECT_EQ(it.context.substr(it.context.size() - 15), ". The result is");
    }
}

}  // namespace
}  // namespace reprise::eval
