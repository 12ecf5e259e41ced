// Logits helpers shared by the tests that compare a model (or its export) with another.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/layer_path.h"
#include "model/model.h"

namespace reprise::test {

// Logits of every prompt position ([prompt.size(), n_vocab] row-major) from a fresh 2-thread
// session with an n_ctx-token context along `path` (the context chooses a long-rope model's
// factors).
std::vector<float> prompt_logits(const Model& model, const LayerPath& path,
                                 std::span<const int32_t> prompt, int n_ctx = 64);

// Keeps prefill on F32 activations while alive (kernels::set_gemm_int8(false)), for tests that
// compare a quantized model with its dequantized copy: those must run the same arithmetic, and
// integer prefill rounds activations only for the quantized one.
class ScopedF32Prefill {
 public:
  ScopedF32Prefill();
  ~ScopedF32Prefill();
  ScopedF32Prefill(const ScopedF32Prefill&) = delete;
  ScopedF32Prefill& operator=(const ScopedF32Prefill&) = delete;

 private:
  bool saved_;
};

// The largest |a[i] - b[i]|; infinity when the sizes differ.
float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b);

// max_abs_diff of row r of a and b, both [rows, width] row-major (e.g. logits at every position).
float row_max_abs_diff(const std::vector<float>& a, const std::vector<float>& b, size_t width,
                       size_t r);

}  // namespace reprise::test
