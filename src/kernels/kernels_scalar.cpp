// The portable reference table: F32 activations everywhere, dot products through quant.cpp's
// dot_row (accumulated in double). REPRISE_ISA=scalar runs exactly these, so the strict golden
// tests keep a path with no SIMD reassociation at all.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstring>
#include <vector>

#include "kernels/isa_kernels.h"
#include "kernels/quant.h"

namespace reprise::kernels {
namespace {

ActFormat matvec_act(uint32_t) {
  return ActFormat::F32;
}

void quantize_act(ActFormat, const float* x, int64_t n, void* out) {
  std::memcpy(out, x, static_cast<size_t>(n) * sizeof(float));
}

void matvec(uint32_t type, const void* w, uint64_t stride, int64_t rows, int64_t cols,
            const void* act, float* y) {
  const auto* base = static_cast<const std::byte*>(w);
  for (int64_t r = 0; r < rows; ++r)
    y[r] = dot_row(static_cast<TensorType>(type), base + r * stride, static_cast<const float*>(act),
                   cols);
}

// Decodes each weight row once and reuses it for every token; 8 interleaved partial sums.
void gemm(uint32_t type, const void* w, uint64_t stride, int64_t rows, int64_t cols, const float* x,
          int64_t T, float* y, int64_t ldy, float* scratch) {
  const auto* base = static_cast<const std::byte*>(w);
  float* row = scratch;
  for (int64_t r = 0; r < rows; ++r) {
    dequantize_row(static_cast<TensorType>(type), base + r * stride, row, cols);
    for (int64_t t = 0; t < T; ++t) {
      const float* xt = x + t * cols;
      float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
      int64_t c = 0;
      for (; c + 8 <= cols; c += 8)
        for (int k = 0; k < 8; ++k) acc[k] += row[c + k] * xt[c + k];
      float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
      for (; c < cols; ++c) s += row[c] * xt[c];
      y[t * ldy + r] = s;
    }
  }
}

float kv_at(const void* base, KvElem e, int64_t off) {
  if (e == KvElem::F32) return static_cast<const float*>(base)[off];
  return fp16_to_fp32(static_cast<const uint16_t*>(base)[off]);
}

void attn_scores(const float* q, const void* k, KvElem elem, int64_t stride, int64_t n, int64_t hd,
                 float scale, float* scores) {
  for (int64_t j = 0; j < n; ++j) {
    float s = 0;
    for (int64_t i = 0; i < hd; ++i) s += q[i] * kv_at(k, elem, j * stride + i);
    scores[j] = s * scale;
  }
}

float softmax_exp(float* s, int64_t n) {
  const float m = *std::max_element(s, s + n);
  double sum = 0;
  for (int64_t j = 0; j < n; ++j) {
    s[j] = std::exp(s[j] - m);
    sum += s[j];
  }
  return static_cast<float>(sum);
}

void attn_values(const float* p, const void* v, KvElem elem, int64_t stride, int64_t n, int64_t hd,
                 float* out) {
  std::fill(out, out + hd, 0.0f);
  for (int64_t j = 0; j < n; ++j)
    for (int64_t i = 0; i < hd; ++i) out[i] += p[j] * kv_at(v, elem, j * stride + i);
}

// The row kernels once per row: the tile entries' contract (a row's bits as alone) by definition.
void attn_scores_tile(const float* q, int64_t ldq, int64_t nq, const void* k, KvElem elem,
                      int64_t stride, int64_t n, int64_t hd, float scale, float* s, int64_t lds) {
  for (int64_t r = 0; r < nq; ++r)
    attn_scores(q + r * ldq, k, elem, stride, n, hd, scale, s + r * lds);
}

void attn_values_tile(const float* p, int64_t ldp, int64_t nq, const int64_t* begin,
                      const int64_t* end, const void* v, KvElem elem, int64_t stride, int64_t hd,
                      float* out, int64_t ldo) {
  const size_t elem_bytes = elem == KvElem::F16 ? 2 : 4;
  for (int64_t r = 0; r < nq; ++r)
    attn_values(p + r * ldp + begin[r],
                static_cast<const std::byte*>(v) + begin[r] * stride * elem_bytes, elem, stride,
                end[r] - begin[r], hd, out + r * ldo);
}

void swiglu(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void exp_sum(const float* x, int64_t n, float* max, double* sum) {
  const float m = *std::max_element(x, x + n);
  double s = 0;
  for (int64_t j = 0; j < n; ++j) s += std::exp(static_cast<double>(x[j]) - m);
  *max = m;
  *sum = s;
}

constexpr IsaKernels kScalar = {
    matvec_act,  quantize_act,     matvec,           gemm,   attn_scores, softmax_exp,
    attn_values, attn_scores_tile, attn_values_tile, swiglu, exp_sum,
};

}  // namespace

const IsaKernels* scalar_kernels() {
  return &kScalar;
}

}  // namespace reprise::kernels
