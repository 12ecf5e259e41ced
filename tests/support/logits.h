// Logits helpers shared by the tests that compare a model (or its export) with another.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/layer_path.h"
#include "model/model.h"

namespace reprise::test {

// Logits of every prompt position ([prompt.size(), n_vocab] row-major) from a fresh 2-thread
// session with a 64-token context along `path`.
std::vector<float> prompt_logits(const Model& model, const LayerPath& path,
                                 std::span<const int32_t> prompt);

// The largest |a[i] - b[i]|; infinity when the sizes differ.
float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b);

}  // namespace reprise::test
