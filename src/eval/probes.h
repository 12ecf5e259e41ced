// Built-in probes generated from a seed: anyone with the same (seed, difficulty, index) gets the
// same item, on any platform (eval/rng.h). Each item depends only on those three values, so the
// first N items are the same whatever the total count.
//
//   probe_math   RYS-style answer-only arithmetic; difficulty = digits per operand (1-9).
//                Items cycle through a product of two d-digit numbers, a square or cube root of
//                a perfect power of a d-digit number, and a sum of five d-digit numbers.
//   probe_logic  ordering puzzles ("the red book is to the left of the blue book") with exactly
//                one consistent order; difficulty = number of objects (3-7).
//   probe_chain  a chain of small operations whose every intermediate result is a digit;
//                difficulty = number of operations (1-32); scored by the digit distribution.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace reprise::eval {

struct MathProbeItem {
  std::string question;  // "What is 4821 * 7734?"
  std::string answer;    // "37285614"
};
MathProbeItem math_probe_item(uint64_t seed, int digits, size_t index);

struct LogicProbeItem {
  std::string context;               // scene, statements, question, "Answer:"
  std::vector<std::string> choices;  // "The red book", ...
  size_t gold = 0;
  std::vector<int> order;  // the object (index into choices) at each position, left to right
};
LogicProbeItem logic_probe_item(uint64_t seed, int n_objects, size_t index);

struct ChainProbeItem {
  std::string context;  // "Start with 4, add 3, then multiply by 2. The result is"
  int answer = 0;
};
ChainProbeItem chain_probe_item(uint64_t seed, int steps, size_t index);

// Difficulty ranges and defaults, by probe name ("probe_math", ...).
struct ProbeSpec {
  const char* name;
  int min_difficulty, max_difficulty, default_difficulty;
  const char* knob;  // what the difficulty counts
};
const std::vector<ProbeSpec>& probe_specs();

}  // namespace reprise::eval
