#include "support/logits.h"

#include <algorithm>
#include <cmath>

#include "engine/session.h"
#include "kernels/dispatch.h"

namespace reprise::test {

std::vector<float> prompt_logits(const Model& model, const LayerPath& path,
                                 std::span<const int32_t> prompt, int n_ctx) {
  SessionOptions so;
  so.n_threads = 2;
  so.n_ctx = n_ctx;
  Session s(model, path, so);
  const auto l = s.prefill(prompt, /*all_logits=*/true);
  return {l.begin(), l.end()};
}

float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  if (a.size() != b.size()) return INFINITY;
  float m = 0;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

float row_max_abs_diff(const std::vector<float>& a, const std::vector<float>& b, size_t width,
                       size_t r) {
  if (a.size() != b.size() || (r + 1) * width > a.size()) return INFINITY;
  float m = 0;
  for (size_t i = r * width; i < (r + 1) * width; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

ScopedF32Prefill::ScopedF32Prefill() : saved_(kernels::gemm_int8_enabled()) {
  kernels::set_gemm_int8(false);
}

ScopedF32Prefill::~ScopedF32Prefill() {
  kernels::set_gemm_int8(saved_);
}

}  // namespace reprise::test
