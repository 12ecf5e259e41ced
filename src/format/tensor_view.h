// A non-owning, typed view of one tensor's bytes inside a mapped model file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "format/tensor_type.h"

namespace reprise {

// Shapes are row-major: shape = {rows, cols}, the last dimension contiguous. GGUF stores dims
// innermost-first (ggml's ne[0] is the contiguous one), so readers reverse them.
struct TensorView {
  std::string name;
  TensorType type = TensorType::F32;
  std::vector<int64_t> shape;       // row-major, outermost first
  std::span<const std::byte> data;  // exactly the tensor's bytes; owned by the mapped file

  int64_t cols() const { return shape.empty() ? 1 : shape.back(); }
  int64_t rows() const {
    int64_t r = 1;
    for (size_t i = 0; i + 1 < shape.size(); ++i) r *= shape[i];
    return r;
  }
  int64_t elements() const { return rows() * cols(); }
  uint64_t row_stride() const { return row_bytes(type, static_cast<uint64_t>(cols())); }
  const std::byte* row(int64_t r) const { return data.data() + r * row_stride(); }
};

std::string shape_string(const std::vector<int64_t>& shape);

}  // namespace reprise
