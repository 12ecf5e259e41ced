// Token selection from logits: greedy at temperature 0, otherwise top-k / top-p / min-p /
// temperature sampling with a seeded generator (the same seed gives the same tokens). A repeat
// penalty, when set, applies before either (so greedy decoding is penalised too, as in llama.cpp).
#pragma once

#include <cstdint>
#include <deque>
#include <random>
#include <span>
#include <vector>

namespace reprise {

struct SamplerOptions {
  float temperature = 0.0f;  // 0 = greedy (argmax)
  int top_k = 40;            // 0 = whole vocabulary
  float top_p = 0.95f;       // 1 = no nucleus cut; 0 = only the most likely token
  uint64_t seed = 42;
  float min_p = 0.0f;  // drop tokens less likely than min_p x the most likely one; 0 = off
  // CTRL's penalty on the last `repeat_last_n` tokens (prompt included): a positive logit is
  // divided by it, a negative one multiplied. 1 = off.
  float repeat_penalty = 1.0f;
  int repeat_last_n = 64;
};

class Sampler {
 public:
  // Throws Error naming the CLI flag if an option is out of range.
  explicit Sampler(const SamplerOptions& opts);
  int32_t sample(std::span<const float> logits);
  // Records a token of the context (prompt or generated) for the repeat penalty.
  void accept(int32_t token);

 private:
  std::span<const float> penalised(std::span<const float> logits);

  SamplerOptions opts_;
  std::mt19937_64 rng_;
  std::deque<int32_t> recent_;  // the last repeat_last_n tokens
  std::vector<float> scratch_;  // penalised logits
};

}  // namespace reprise
