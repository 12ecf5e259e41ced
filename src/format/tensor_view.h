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

// Takes a tensor's dimensions one by one as a reader parses them (GGUF and safetensors) and
// refuses absurd ones: a dimension above 2^40, or one that takes the product of the dimensions
// past 2^50 elements. No real tensor is near either, and below them elements * bytes per element
// cannot overflow.
// Zeros are skipped in that product, so a shape such as [0, 2^40, 2^40] (no elements, yet
// rows() would overflow int64_t) is refused too.
class ShapeLimit {
 public:
  static constexpr uint64_t kMaxDim = uint64_t{1} << 40;
  static constexpr uint64_t kMaxElements = uint64_t{1} << 50;

  // False when `dim` is too large on its own or for the product so far.
  bool add(uint64_t dim) {
    if (dim > kMaxDim) return false;
    if (dim == 0) {
      has_zero_ = true;
      return true;
    }
    if (nonzero_product_ > kMaxElements / dim) return false;
    nonzero_product_ *= dim;
    return true;
  }
  uint64_t elements() const { return has_zero_ ? 0 : nonzero_product_; }

 private:
  uint64_t nonzero_product_ = 1;
  bool has_zero_ = false;
};

}  // namespace reprise
