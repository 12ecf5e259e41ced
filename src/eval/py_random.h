// Python's random.Random for an integer seed, as far as lm-evaluation-harness's few-shot sampler
// uses it (random.Random(seed).sample), so reprise draws the same few-shot examples lm-eval does.
// CPython seeds MT19937 with init_by_array over the seed's 32-bit words, takes k random bits as
// the top k bits of one 32-bit output, and _randbelow(n) retries bit_length(n)-bit draws until
// one is below n; sample() picks from a shrinking pool for small populations and by rejection
// from a set otherwise.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace reprise::eval {

class PyRandom {
 public:
  explicit PyRandom(uint64_t seed);

  uint32_t next_u32();             // genrand_uint32
  uint32_t getrandbits(int k);     // 1 <= k <= 32
  uint64_t randbelow(uint64_t n);  // n >= 1, n < 2^32
  // random.sample(range(n), k): k distinct indices in draw order.
  std::vector<size_t> sample(size_t n, size_t k);

 private:
  static constexpr int kN = 624;
  std::array<uint32_t, kN> mt_{};
  int index_ = kN + 1;
};

}  // namespace reprise::eval
