// Activation-side operations of the forward pass. Activations are F32, row-major [T, n]
// (one row per token). Weights are TensorViews of any computable type.
#pragma once

#include <cstdint>
#include <span>

#include "format/tensor_view.h"
#include "util/thread_pool.h"

namespace reprise::kernels {

class PackedMatrix;  // kernels/packed.h

// y[t, r] = sum_c w[r, c] * x[t, c]  for t < T.   x: [T, w.cols()], y: [T, w.rows()].
// Below kGemmMinTokens tokens the matrix-vector kernels run (decode), else the GEMM kernels,
// which round differently. With batch_invariant the GEMM kernels run for every T: they compute
// each token row on its own, in the same order whatever T is, so row t's result is bit for bit
// the same however many rows come with it (log-likelihood scoring, which must not depend on
// how a prompt was split into prefills).
// `packed`, when given and usable for w (PackedMatrix::usable_for), is w already unpacked for the
// integer prefill: the GEMM kernels then read its panels instead of unpacking w, with the same
// results bit for bit. Decode (the matrix-vector kernels) reads w itself either way.
void matmul(const TensorView& w, const float* x, int64_t T, float* y, ThreadPool& pool,
            bool batch_invariant = false, const PackedMatrix* packed = nullptr);

// y[t, :] = x[t, :] / rms(x[t, :]) * gain   (rms over n with eps inside the square root).
void rmsnorm(const float* x, const float* gain, int64_t T, int64_t n, float eps, float* y);

// Adds bias[n] to every row of y[T, n].
void add_bias(float* y, const float* bias, int64_t T, int64_t n);

// x[t, :] += d[t, :]
void add(float* x, const float* d, int64_t n);

// g[i] = silu(g[i]) * u[i]
void swiglu(float* g, const float* u, int64_t n);

// g[i] = gelu(g[i]) * u[i], GELU in its tanh approximation (Gemma's gelu_pytorch_tanh):
// gelu(x) = x/2 (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))).
void geglu(float* g, const float* u, int64_t n);

// x[i] = c tanh(x[i] / c): soft-capping of logits to (-c, c), c > 0.
void softcap(float* x, int64_t n, float c);

// Copies row `id` of an embedding matrix (any computable type) to out[cols] as F32.
void embedding_row(const TensorView& table, int64_t id, float* out);

// The keys and values of one attention head in a KV cache: position j's key is hd elements at
// k + j * stride, its value at v + j * stride (stride in elements; F32, or F16 bit patterns).
struct AttnKv {
  const void* k = nullptr;
  const void* v = nullptr;
  int64_t stride = 0;
  bool f16 = false;
};

// Causal attention of one head for n consecutive queries at positions pos..pos + n - 1:
//   out_r = sum_j softmax_j(cap(scale * q_r . k_j)) v_j
// over keys j = first(pos + r)..pos + r, first(p) = max(0, p - window + 1) when window > 0 (a
// sliding-window layer), else 0; cap(s) = softcap tanh(s / softcap), or s when softcap is 0.
// q_r is hd floats at q + r * ldq, out_r hd floats at out + r * ldo.
// Rows are processed in tiles of kAttnTileRows (keys and values loaded once per tile, not per
// row), but every score and sum of a row is formed exactly as for that row alone: a row's result
// is bit for bit the same whatever n and pos grouping (batch-invariant prefill relies on it).
void attention(const AttnKv& kv, int64_t hd, float scale, float softcap, int64_t window,
               const float* q, int64_t ldq, int64_t n, int64_t pos, float* out, int64_t ldo);
// Query rows one attention() tile covers (callers split work in multiples of it).
inline constexpr int64_t kAttnTileRows = 16;

// log(sum_j exp(v[j])) with the maximum shifted out (no overflow), summed in double; the active
// ISA's exp (AVX2: a polynomial within ~2 ulp of float exp). An infinite maximum is returned as
// is. v must not be empty.
double log_sum_exp(std::span<const float> v);

// Index of the largest value (first one on ties).
int64_t argmax(std::span<const float> v);

}  // namespace reprise::kernels
