// Per-type row kernels: dequantize, dot product with F32 activations, and quantize.
//
// Every function works on one row of `n` elements stored as `type` (ggml block layout, see
// kernels/README.md); `n` must be a multiple of the type's block_elems. These are the portable
// scalar reference kernels; SIMD variants plug in behind the same signatures (kernels/dispatch.h)
// and are tested against these.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "format/tensor_type.h"

namespace reprise::kernels {

// out[0..n) = the F32 value of each element of the row. `row` holds row_bytes(type, n) bytes.
void dequantize_row(TensorType type, const void* row, float* out, int64_t n);

// Returns sum_i row[i] * x[i] in F32 (accumulated in F32 or wider).
float dot_row(TensorType type, const void* row, const float* x, int64_t n);

// Writes row_bytes(type, n) bytes encoding x[0..n) as `type`, with the same rounding as
// llama.cpp's reference quantizers (for Q4_K/Q5_K/Q6_K: the non-imatrix reference path).
void quantize_row(TensorType type, const float* x, void* row, int64_t n);

// Scalar half-precision conversions (round-to-nearest-even).
float fp16_to_fp32(uint16_t h);
uint16_t fp32_to_fp16(float f);
float bf16_to_fp32(uint16_t h);
uint16_t fp32_to_bf16(float f);

}  // namespace reprise::kernels
