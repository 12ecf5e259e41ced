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
  if (!(opts.top_p > 0 && opts.top_p <= 1))
    throw Error(fmt::format("--top-p must be in (0, 1], got {}", opts.top_p));
}

int32_t Sampler::sample(std::span<const float> logits) {
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
  for (int i = 0; i < k; ++i) sum += p[i] = std::exp((logits[ids[i]] - max_logit) / opts_.temperature);
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
  std::discrete_distribution<int> dist(p.begin(), p.begin() + keep);
  return ids[dist(rng_)];
}

}  // namespace reprise
