// Token selection from logits: greedy at temperature 0, otherwise top-k / top-p / temperature
// sampling with a seeded generator (the same seed gives the same tokens).
#pragma once

#include <cstdint>
#include <random>
#include <span>

namespace reprise {

struct SamplerOptions {
  float temperature = 0.0f;  // 0 = greedy (argmax)
  int top_k = 40;            // 0 = whole vocabulary
  float top_p = 0.95f;       // 1 = no nucleus cut
  uint64_t seed = 42;
};

class Sampler {
 public:
  explicit Sampler(const SamplerOptions& opts);
  // Throws Error if an option is out of range.
  int32_t sample(std::span<const float> logits);

 private:
  SamplerOptions opts_;
  std::mt19937_64 rng_;
};

}  // namespace reprise
