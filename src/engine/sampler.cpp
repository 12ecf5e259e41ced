#include "engine/sampler.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "kernels/ops.h"
#include "util/error.h"

namespace reprise {

Sampler::Sampler(const SamplerOptions& opts) : opts_(opts), rng_(opts.seed) {
  if (!(opts.temperature >= 0) || !std::isfinite(opts.temperature))
    throw Error(fmt::format("--temp must be >= 0, got {}", opts.temperature));
  if (opts.top_k < 0) throw Error(fmt::format("--top-k must be >= 0, got {}", opts.top_k));
  // One rule for the CLI and the API: top_p 0 keeps only the most likely token.
  if (!(opts.top_p >= 0 && opts.top_p <= 1))
    throw Error(fmt::format("--top-p must be in [0, 1], got {}", opts.top_p));
  if (!(opts.min_p >= 0 && opts.min_p <= 1))
    throw Error(fmt::format("--min-p must be in [0, 1], got {}", opts.min_p));
  if (!(opts.repeat_penalty > 0) || !std::isfinite(opts.repeat_penalty))
    throw Error(fmt::format("--repeat-penalty must be > 0, got {}", opts.repeat_penalty));
  if (opts.repeat_last_n < 0)
    throw Error(fmt::format("--repeat-last-n must be >= 0, got {}", opts.repeat_last_n));
}

void Sampler::accept(int32_t token) {
  if (opts_.repeat_penalty == 1.0f || opts_.repeat_last_n == 0) return;
  recent_.push_back(token);
  if (recent_.size() > static_cast<size_t>(opts_.repeat_last_n)) recent_.pop_front();
}

std::span<const float> Sampler::penalised(std::span<const float> logits) {
  if (recent_.empty()) return logits;
  scratch_.assign(logits.begin(), logits.end());
  std::vector<int32_t> seen(recent_.begin(), recent_.end());
  std::sort(seen.begin(), seen.end());
  seen.erase(std::unique(seen.begin(), seen.end()), seen.end());
  for (int32_t id : seen) {
    if (id < 0 || static_cast<size_t>(id) >= scratch_.size()) continue;
    float& l = scratch_[id];
    l = l > 0 ? l / opts_.repeat_penalty : l * opts_.repeat_penalty;
  }
  return scratch_;
}

int32_t Sampler::sample(std::span<const float> raw_logits) {
  const std::span<const float> logits = penalised(raw_logits);
  if (opts_.temperature == 0.0f) return static_cast<int32_t>(kernels::argmax(logits));
  const int n = static_cast<int>(logits.size());
  std::vector<int> ids(n);
  std::iota(ids.begin(), ids.end(), 0);
  const int k = opts_.top_k > 0 ? std::min(opts_.top_k, n) : n;
  std::partial_sort(ids.begin(), ids.begin() + k, ids.end(),
                    [&](int a, int b) { return logits[a] > logits[b]; });
  ids.resize(k);
  std::vector<double> p(k);
  const double max_logit = logits[ids[0]];
  double sum = 0;
  for (int i = 0; i < k; ++i)
    sum += p[i] = std::exp((logits[ids[i]] - max_logit) / opts_.temperature);
  // Nucleus: keep the smallest prefix whose probability mass reaches top_p.
  double cum = 0;
  int keep = k;
  for (int i = 0; i < k; ++i) {
    cum += p[i] / sum;
    if (cum >= opts_.top_p) {
      keep = i + 1;
      break;
    }
  }
  // Min-p: p is sorted, so the tokens at least min_p x as likely as the first form a prefix.
  while (keep > 1 && p[keep - 1] < opts_.min_p * p[0]) --keep;
  std::discrete_distribution<int> dist(p.begin(), p.begin() + keep);
  return ids[dist(rng_)];
}

}  // namespace reprise
