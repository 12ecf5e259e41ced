#include "kernels/ops.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/isa_kernels.h"
#include "kernels/packed.h"
#include "kernels/quant.h"
#include "util/error.h"

namespace reprise::kernels {

namespace {

uint64_t act_bytes(ActFormat f, int64_t cols) {
  switch (f) {
    case ActFormat::Q8_32:
      return static_cast<uint64_t>(cols / 32) * sizeof(ActQ8_32);
    case ActFormat::Q8_256:
      return static_cast<uint64_t>(cols / 256) * sizeof(ActQ8_256);
    case ActFormat::Q8_32x2:
      return static_cast<uint64_t>((cols + 63) / 64) * sizeof(ActQ8_32x2);
    case ActFormat::F32:
      break;
  }
  return static_cast<uint64_t>(cols) * sizeof(float);
}

void check_computable(const TensorView& w) {
  const auto& ti = info(w.type);
  if (!ti.computable)
    throw Error(fmt::format("matmul: unsupported tensor type {} ({})", ti.name, w.name));
  if (w.cols() % ti.block_elems != 0)
    throw Error(fmt::format("matmul: {} row of {} elements is not a multiple of the block size {}",
                            ti.name, w.cols(), ti.block_elems));
}

}  // namespace

// Below kGemmMinTokens a matmul runs the matrix-vector kernels once per token (their weight rows
// stay in cache across the tokens of a 16-row block); from it on, the GEMM kernels, which
// dequantize a weight panel once and reuse it for every token (and compute each token's row
// alike for every T: what batch_invariant relies on).
void matmul(const TensorView& w, const float* x, int64_t T, float* y, ThreadPool& pool,
            bool batch_invariant, const PackedMatrix* packed) {
  check_computable(w);
  const IsaKernels& k = active_kernels();
  const int64_t rows = w.rows(), cols = w.cols();
  const uint64_t stride = w.row_stride();
  const std::byte* base = w.data.data();
  const auto type = static_cast<uint32_t>(w.type);
  if (T < kGemmMinTokens && !batch_invariant) {
    const ActFormat f = k.matvec_act(type);
    const uint64_t ab = act_bytes(f, cols);
    // The caller's buffer; workers must see this pointer, not their own thread_local copy.
    thread_local std::vector<std::byte> act_buf;
    act_buf.resize(ab * T);
    std::byte* act = act_buf.data();
    for (int64_t t = 0; t < T; ++t) k.quantize_act(f, x + t * cols, cols, act + t * ab);
    pool.parallel_for(rows, [&](int64_t r0, int64_t r1) {
      if (T == 1) {
        k.matvec(type, base + r0 * stride, stride, r1 - r0, cols, act, y + r0);
        return;
      }
      for (int64_t rb = r0; rb < r1; rb += kGemmRowTile) {
        const int64_t n = std::min(kGemmRowTile, r1 - rb);
        for (int64_t t = 0; t < T; ++t)
          k.matvec(type, base + rb * stride, stride, n, cols, act + t * ab, y + t * rows + rb);
      }
    });
    return;
  }
  const int64_t n_tiles = (rows + kGemmRowTile - 1) / kGemmRowTile;
  // Prefill on encoded activations (AVX-512; 8-bit for quantized weights): every token row is
  // encoded once, then each thread's rows use them all.
  // (REPRISE_PREFILL is checked first, so a bad value is an error on every CPU.)
  if (const int64_t ab =
          gemm_int8_enabled() && k.gemm_rounded ? k.gemm_act_row_bytes(type, cols) : 0;
      ab > 0) {
    thread_local std::vector<std::byte> q_buf;
    q_buf.resize(static_cast<size_t>(ab * T));
    std::byte* act = q_buf.data();
    pool.parallel_for(T, [&](int64_t t0, int64_t t1) {
      for (int64_t t = t0; t < t1; ++t) k.gemm_round_act(type, x + t * cols, cols, act + t * ab);
    });
    if (packed && packed->usable_for(w)) {  // the panels, unpacked once (kernels/packed.h)
      pool.parallel_for(packed->n_panels(), [&](int64_t p0, int64_t p1) {
        k.gemm_packed(type, packed->panels(), rows, cols, p0, p1, act, T, y, rows);
      });
      return;
    }
    pool.parallel_for(n_tiles, [&](int64_t b0, int64_t b1) {
      thread_local std::vector<float> scratch;
      scratch.resize(static_cast<size_t>(gemm_scratch_floats(cols)));
      const int64_t r0 = b0 * kGemmRowTile, r1 = std::min(rows, b1 * kGemmRowTile);
      k.gemm_rounded(type, base + r0 * stride, stride, r1 - r0, cols, act, T, y + r0, rows,
                     scratch.data());
    });
    return;
  }
  pool.parallel_for(n_tiles, [&](int64_t b0, int64_t b1) {
    thread_local std::vector<float> scratch;
    scratch.resize(static_cast<size_t>(gemm_scratch_floats(cols)));
    const int64_t r0 = b0 * kGemmRowTile, r1 = std::min(rows, b1 * kGemmRowTile);
    k.gemm(type, base + r0 * stride, stride, r1 - r0, cols, x, T, y + r0, rows, scratch.data());
  });
}

void attention(const AttnKv& kv, int64_t hd, float scale, float softcap, int64_t window,
               const float* q, int64_t ldq, int64_t n, int64_t pos, float* out, int64_t ldo) {
  const IsaKernels& k = active_kernels();
  const KvElem elem = kv.f16 ? KvElem::F16 : KvElem::F32;
  const size_t elem_bytes = kv.f16 ? 2 : 4;
  auto first_key = [&](int64_t p) { return window > 0 ? std::max<int64_t>(0, p - window + 1) : 0; };
  // One row of scores per query row over the keys its tile spans (at most kAttnTileRows - 1
  // more than the row's own), never a [T, T] matrix.
  thread_local std::vector<float> scores;
  for (int64_t r0 = 0; r0 < n; r0 += kAttnTileRows) {
    const int64_t nq = std::min(kAttnTileRows, n - r0);
    const int64_t j0 = first_key(pos + r0), span = pos + r0 + nq - j0;
    const auto* kb = static_cast<const std::byte*>(kv.k) + j0 * kv.stride * elem_bytes;
    const auto* vb = static_cast<const std::byte*>(kv.v) + j0 * kv.stride * elem_bytes;
    scores.resize(static_cast<size_t>(nq * span));
    int64_t begin[kAttnTileRows], end[kAttnTileRows];
    if (nq == 1)
      k.attn_scores(q + r0 * ldq, kb, elem, kv.stride, span, hd, scale, scores.data());
    else
      k.attn_scores_tile(q + r0 * ldq, ldq, nq, kb, elem, kv.stride, span, hd, scale, scores.data(),
                         span);
    float inv[kAttnTileRows];
    for (int64_t r = 0; r < nq; ++r) {
      begin[r] = first_key(pos + r0 + r) - j0;
      end[r] = pos + r0 + r + 1 - j0;
      float* s = scores.data() + r * span + begin[r];
      const int64_t len = end[r] - begin[r];
      if (softcap > 0)
        for (int64_t j = 0; j < len; ++j) s[j] = softcap * std::tanh(s[j] / softcap);
      inv[r] = 1.0f / k.softmax_exp(s, len);
    }
    float* o = out + r0 * ldo;
    if (nq == 1)
      k.attn_values(scores.data() + begin[0], vb + begin[0] * kv.stride * elem_bytes, elem,
                    kv.stride, end[0] - begin[0], hd, o);
    else
      k.attn_values_tile(scores.data(), span, nq, begin, end, vb, elem, kv.stride, hd, o, ldo);
    for (int64_t r = 0; r < nq; ++r)
      for (int64_t i = 0; i < hd; ++i) o[r * ldo + i] *= inv[r];
  }
}

double log_sum_exp(std::span<const float> v) {
  float max = 0;
  double sum = 0;
  active_kernels().exp_sum(v.data(), static_cast<int64_t>(v.size()), &max, &sum);
  // An infinite maximum is the answer itself (inf - inf would make the sum NaN).
  if (std::isinf(max)) return max;
  return max + std::log(sum);
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
  active_kernels().swiglu(g, u, n);
}

void geglu(float* g, const float* u, int64_t n) {
  constexpr float kSqrt2OverPi = 0.7978845608028654f, kCubic = 0.044715f;
  for (int64_t i = 0; i < n; ++i) {
    const float x = g[i];
    g[i] = 0.5f * x * (1.0f + std::tanh(kSqrt2OverPi * x * (1.0f + kCubic * x * x))) * u[i];
  }
}

void softcap(float* x, int64_t n, float c) {
  for (int64_t i = 0; i < n; ++i) x[i] = c * std::tanh(x[i] / c);
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
