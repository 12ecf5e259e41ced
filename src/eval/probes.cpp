#include "eval/probes.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <numeric>

#include "eval/rng.h"

namespace reprise::eval {
namespace {

// One generator per item, from everything that identifies it.
Rng item_rng(uint64_t seed, std::string_view probe, int difficulty, size_t index) {
  uint64_t s = mix_seed(seed, fnv1a64(probe));
  s = mix_seed(s, static_cast<uint64_t>(difficulty));
  return Rng(mix_seed(s, index));
}

uint64_t pow10(int d) {
  uint64_t p = 1;
  while (d-- > 0) p *= 10;
  return p;
}

// A uniformly random number with exactly d digits (1..9 for d = 1).
uint64_t random_digits(Rng& rng, int d) {
  const uint64_t lo = d == 1 ? 1 : pow10(d - 1), hi = pow10(d) - 1;
  return lo + rng.below(hi - lo + 1);
}

const char* const kNumberWords[] = {"zero", "one", "two",   "three", "four",
                                    "five", "six", "seven", "eight", "nine"};
const char* const kOrdinals[] = {"first", "second", "third", "fourth", "fifth", "sixth", "seventh"};
const char* const kColors[] = {"red",    "blue",  "green", "yellow", "purple",
                               "orange", "white", "black", "brown",  "gray"};

// A statement about an order, as a predicate on pos[object] (the object's position).
struct Statement {
  enum Kind { LeftOf, Position } kind;
  int a, b;  // LeftOf: a is left of b; Position: object a is at position b
  std::string text;
  bool holds(const std::array<int, 7>& pos) const {
    return kind == LeftOf ? pos[a] < pos[b] : pos[a] == b;
  }
};

size_t count_consistent(const std::vector<std::array<int, 7>>& perms,
                        const std::vector<const Statement*>& used) {
  size_t n = 0;
  for (const auto& pos : perms) {
    bool ok = true;
    for (const Statement* s : used) ok = ok && s->holds(pos);
    n += ok;
  }
  return n;
}

}  // namespace

const std::vector<ProbeSpec>& probe_specs() {
  static const std::vector<ProbeSpec> specs = {
      {"probe_math", 1, 9, 4, "digits per operand"},
      {"probe_logic", 3, 7, 5, "objects to order"},
      {"probe_chain", 1, 32, 4, "operations in the chain"},
  };
  return specs;
}

MathProbeItem math_probe_item(uint64_t seed, int digits, size_t index) {
  Rng rng = item_rng(seed, "probe_math", digits, index);
  MathProbeItem it;
  switch (index % 3) {
    case 0: {
      const uint64_t a = random_digits(rng, digits), b = random_digits(rng, digits);
      it.question = fmt::format("What is {} * {}?", a, b);
      it.answer = std::to_string(a * b);  // < 10^18 for up to 9 digits
      break;
    }
    case 1: {
      const uint64_t r = random_digits(rng, digits);
      // Cubes only while they fit in 64 bits (r < 10^6).
      if (digits <= 6 && rng.below(2) == 1) {
        it.question = fmt::format("What is the cube root of {}?", r * r * r);
      } else {
        it.question = fmt::format("What is the square root of {}?", r * r);
      }
      it.answer = std::to_string(r);
      break;
    }
    default: {
      uint64_t sum = 0;
      std::string terms;
      for (int k = 0; k < 5; ++k) {
        const uint64_t v = random_digits(rng, digits);
        sum += v;
        terms += (k ? " + " : "") + std::to_string(v);
      }
      it.question = fmt::format("What is {}?", terms);
      it.answer = std::to_string(sum);
    }
  }
  return it;
}

LogicProbeItem logic_probe_item(uint64_t seed, int n, size_t index) {
  Rng rng = item_rng(seed, "probe_logic", n, index);
  // Object names: n distinct colours, in a random order of introduction.
  std::vector<int> colors(std::size(kColors));
  std::iota(colors.begin(), colors.end(), 0);
  for (size_t k = colors.size(); k > 1; --k) std::swap(colors[k - 1], colors[rng.below(k)]);
  colors.resize(n);
  auto name = [&](int obj) { return fmt::format("the {} book", kColors[colors[obj]]); };
  auto Name = [&](int obj) { return fmt::format("The {} book", kColors[colors[obj]]); };

  // The hidden order: a random permutation; pos[obj] is where each object stands.
  LogicProbeItem it;
  it.order.resize(n);
  std::iota(it.order.begin(), it.order.end(), 0);
  for (size_t k = it.order.size(); k > 1; --k) std::swap(it.order[k - 1], it.order[rng.below(k)]);
  std::array<int, 7> pos{};
  for (int p = 0; p < n; ++p) pos[it.order[p]] = p;

  // Every true statement, in random phrasing and random order.
  std::vector<Statement> pool;
  for (int a = 0; a < n; ++a)
    for (int b = 0; b < n; ++b)
      if (a < b) {
        const int l = pos[a] < pos[b] ? a : b, r = l == a ? b : a;
        pool.push_back({Statement::LeftOf, l, r,
                        rng.below(2) ? fmt::format("{} is to the left of {}.", Name(l), name(r))
                                     : fmt::format("{} is to the right of {}.", Name(r), name(l))});
      }
  for (int a = 0; a < n; ++a) {
    std::string text;
    if (pos[a] == 0) {
      text = fmt::format("{} is the leftmost.", Name(a));
    } else if (pos[a] == n - 1) {
      text = fmt::format("{} is the rightmost.", Name(a));
    } else if (rng.below(2)) {
      text = fmt::format("{} is the {} from the left.", Name(a), kOrdinals[pos[a]]);
    } else {
      text = fmt::format("{} is the {} from the right.", Name(a), kOrdinals[n - 1 - pos[a]]);
    }
    pool.push_back({Statement::Position, a, pos[a], text});
  }
  for (size_t k = pool.size(); k > 1; --k) std::swap(pool[k - 1], pool[rng.below(k)]);

  // All orders, as position arrays.
  std::vector<std::array<int, 7>> perms;
  std::vector<int> p(n);
  std::iota(p.begin(), p.end(), 0);
  do {
    std::array<int, 7> q{};
    for (int k = 0; k < n; ++k) q[p[k]] = k;
    perms.push_back(q);
  } while (std::next_permutation(p.begin(), p.end()));

  // Add statements until one order is left, then drop those the others already imply, so the
  // puzzle needs every statement it states.
  std::vector<const Statement*> used;
  for (const Statement& s : pool) {
    used.push_back(&s);
    if (count_consistent(perms, used) == 1) break;
  }
  for (size_t k = used.size(); k-- > 0;) {
    std::vector<const Statement*> without = used;
    without.erase(without.begin() + static_cast<std::ptrdiff_t>(k));
    if (count_consistent(perms, without) == 1) used = std::move(without);
  }

  std::string scene = fmt::format("On a shelf, there are {} books:", kNumberWords[n]);
  for (int a = 0; a < n; ++a)
    scene +=
        fmt::format("{} {}", a == 0 ? "" : (a + 1 == n ? ", and" : ","), "a " + name(a).substr(4));
  scene += ".";
  for (const Statement* s : used) scene += " " + s->text;
  const int asked = static_cast<int>(rng.below(n));
  it.context = fmt::format("{}\nQuestion: Which book is the {} from the left?\nAnswer:", scene,
                           kOrdinals[asked]);
  for (int a = 0; a < n; ++a) it.choices.push_back(Name(a));
  it.gold = static_cast<size_t>(it.order[asked]);
  return it;
}

ChainProbeItem chain_probe_item(uint64_t seed, int steps, size_t index) {
  Rng rng = item_rng(seed, "probe_chain", steps, index);
  int v = static_cast<int>(rng.below(10));
  std::string text = fmt::format("Start with {}", v);
  for (int s = 0; s < steps; ++s) {
    // For each operation (add, subtract, multiply, divide) the operands that keep a digit.
    std::array<std::vector<int>, 4> operands;
    for (int k = 1; k <= 9; ++k) {
      if (v + k <= 9) operands[0].push_back(k);
      if (v - k >= 0) operands[1].push_back(k);
      if (k >= 2 && v >= 1 && v * k <= 9) operands[2].push_back(k);
      if (k >= 2 && v >= k && v % k == 0) operands[3].push_back(k);
    }
    std::vector<int> ops;
    for (int o = 0; o < 4; ++o)
      if (!operands[o].empty()) ops.push_back(o);
    const int op = ops[rng.below(ops.size())];
    const int k = operands[op][rng.below(operands[op].size())];
    static const char* const kVerb[] = {"add {}", "subtract {}", "multiply by {}", "divide by {}"};
    v = op == 0 ? v + k : op == 1 ? v - k : op == 2 ? v * k : v / k;
    text +=
        (s + 1 == steps && steps > 1 ? ", then " : ", ") + fmt::format(fmt::runtime(kVerb[op]), k);
  }
  ChainProbeItem it;
  it.context = text + ". The result is";
  it.answer = v;
  return it;
}

}  // namespace reprise::eval
