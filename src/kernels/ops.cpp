#include "kernels/ops.h"

#include <cmath>
#include <vector>

#include "kernels/quant.h"

namespace reprise::kernels {

void matmul(const TensorView& w, const float* x, int64_t T, float* y, ThreadPool& pool) {
  const int64_t rows = w.rows(), cols = w.cols();
  const uint64_t stride = w.row_stride();
  const std::byte* base = w.data.data();
  if (T == 1) {
    pool.parallel_for(rows, [&](int64_t r0, int64_t r1) {
      for (int64_t r = r0; r < r1; ++r) y[r] = dot_row(w.type, base + r * stride, x, cols);
    });
    return;
  }
  // Prefill: decode each weight row once and reuse it for every token.
  pool.parallel_for(rows, [&](int64_t r0, int64_t r1) {
    std::vector<float> row(static_cast<size_t>(cols));
    for (int64_t r = r0; r < r1; ++r) {
      dequantize_row(w.type, base + r * stride, row.data(), cols);
      for (int64_t t = 0; t < T; ++t) {
        const float* xt = x + t * cols;
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        int64_t c = 0;
        for (; c + 8 <= cols; c += 8)
          for (int k = 0; k < 8; ++k) acc[k] += row[c + k] * xt[c + k];
        float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
        for (; c < cols; ++c) s += row[c] * xt[c];
        y[t * rows + r] = s;
      }
    }
  });
}

void rmsnorm(const float* x, const float* gain, int64_t T, int64_t n, float eps, float* y) {
  for (int64_t t = 0; t < T; ++t) {
    const float* xt = x + t * n;
    double ss = 0;
    for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(xt[i]) * xt[i];
    const float scale = static_cast<float>(1.0 / std::sqrt(ss / static_cast<double>(n) + eps));
    float* yt = y + t * n;
    for (int64_t i = 0; i < n; ++i) yt[i] = xt[i] * scale * gain[i];
  }
}

void add_bias(float* y, const float* bias, int64_t T, int64_t n) {
  for (int64_t t = 0; t < T; ++t)
    for (int64_t i = 0; i < n; ++i) y[t * n + i] += bias[i];
}

void add(float* x, const float* d, int64_t n) {
  for (int64_t i = 0; i < n; ++i) x[i] += d[i];
}

void swiglu(float* g, const float* u, int64_t n) {
  for (int64_t i = 0; i < n; ++i) g[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
}

void embedding_row(const TensorView& table, int64_t id, float* out) {
  dequantize_row(table.type, table.row(id), out, table.cols());
}

int64_t argmax(std::span<const float> v) {
  int64_t best = 0;
  for (size_t i = 1; i < v.size(); ++i)
    if (v[i] > v[best]) best = static_cast<int64_t>(i);
  return best;
}

}  // namespace reprise::kernels
