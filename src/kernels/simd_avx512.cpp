// AVX-512 kernels (F, BW, VL, DQ and VNNI: Intel Ice Lake / Sapphire Rapids and later, AMD Zen 4
// and later).
//
// This file is compiled with the AVX-512 target flags (CMakeLists.txt) and only ever called after
// dispatch.cpp has checked the CPU. Everything except the table getter is file-local (see
// isa_kernels.h). The table is the AVX2 one with the kernels below put in its place; every type
// or operation not covered here runs the AVX2 kernel.
//
// Integer prefill (gemm_rounded): each token's activations are quantized once per matmul to signed
// 8-bit values with one scale per 32 (gemm_round_act). Weights are unpacked 32 rows at a time into
// a panel of unsigned 8-bit quants (Q8_0 shifted by +128, Q4_0/Q4_K/Q5_K/Q6_K as stored), four
// consecutive columns of 16 rows per 512-bit register, with one float scale (and, for Q4_K/Q5_K,
// one float offset) per row and block. `vpdpbusd` multiplies a register of weights with four
// activation bytes broadcast from memory and sums each four products into a 32-bit lane, so a
// 6-token x 32-row tile of integer dot products needs one weight load per 12 instructions. Each
// block's sums are then turned into float once: y += (s_w * d_x) * dot, and y += o_w * (d_x *
// sum q_x) for the types with minimums. The weights' zero point (128 for Q8_0, 8 for Q4_0, 32 for
// Q6_K) is taken off through the activations: every block's integer sum starts at
// -zero * sum(q_x), precomputed per token by gemm_round_act.
#include <cstdint>
#include <cstring>

#include "kernels/isa_kernels.h"
#include "kernels/prefetch.h"
#include "kernels/quant_blocks.h"

#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512VL__) && \
    defined(__AVX512VNNI__) && defined(__F16C__)
// GCC 12's AVX-512 intrinsics (_mm512_cvtepi32_epi8, the reductions, masked stores) start from
// deliberately undefined registers, which -Wmaybe-uninitialized reports at every use.
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>

namespace reprise::kernels {
namespace {

// ggml type ids (format/tensor_type.h is not included here: it defines inline functions).
constexpr uint32_t kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ8_0 = 8, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14,
                   kBF16 = 30;

inline bool is_float(uint32_t type) {
  return type == kF32 || type == kF16 || type == kBF16;
}

inline float f16(uint16_t h) {
  return _cvtsh_ss(h);
}

inline __m256i loadu256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}
inline void storeu256(void* p, __m256i v) {
  _mm256_storeu_si256(static_cast<__m256i*>(p), v);
}

// The covered types, the activation layout and the weight unpacking (AVX2 instructions).
#include "kernels/gemm_int_common.inc"

using namespace gemm_int;

GemmType gemm_type(uint32_t type) {
  return gemm_int::gemm_type<false>(type);
}

inline int64_t round64(int64_t bytes) {
  return (bytes + 63) / 64 * 64;
}

int64_t gemm_act_row_bytes(uint32_t type, int64_t cols) {
  if (is_float(type)) return round64(4 * cols);
  if (type == kF16) return round64(4 * cols);
  return gemm_type(type).bk ? act_row_bytes_for(cols) : 0;
}

inline int32_t hsum_i32(__m512i v) {
  return _mm512_reduce_add_epi32(v);
}

void gemm_round_act(uint32_t type, const float* x, int64_t cols, void* out) {
  if (is_float(type)) {  // F32 activations, as they are
    std::memcpy(out, x, static_cast<size_t>(cols) * sizeof(float));
    return;
  }
  const GemmType g = gemm_type(type);
  auto* p = static_cast<uint8_t*>(out);
  const int64_t nb = cols / 32;
  auto* q = reinterpret_cast<int8_t*>(p);
  auto* d = reinterpret_cast<float*>(p + cols);
  auto* ds = reinterpret_cast<float*>(p + cols + 4 * nb);
  auto* init = reinterpret_cast<int32_t*>(p + cols + 8 * nb);
  const __m512 sign = _mm512_set1_ps(-0.0f);
  for (int64_t b = 0; b < nb; ++b, x += 32) {
    const __m512 v0 = _mm512_loadu_ps(x), v1 = _mm512_loadu_ps(x + 16);
    const float amax =
        _mm512_reduce_max_ps(_mm512_max_ps(_mm512_andnot_ps(sign, v0), _mm512_andnot_ps(sign, v1)));
    const __m512 id = _mm512_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
    // Round to nearest even, as the decode path's quantizer does.
    const __m512i i0 = _mm512_cvtps_epi32(_mm512_mul_ps(v0, id));
    const __m512i i1 = _mm512_cvtps_epi32(_mm512_mul_ps(v1, id));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 32 * b), _mm512_cvtepi32_epi8(i0));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 32 * b + 16), _mm512_cvtepi32_epi8(i1));
    const int32_t s0 = hsum_i32(i0), s1 = hsum_i32(i1);
    d[b] = amax / 127.0f;
    ds[b] = d[b] * static_cast<float>(s0 + s1);
    if (g.bk == 16) {
      init[2 * b] = -g.zero * s0;
      init[2 * b + 1] = -g.zero * s1;
    } else {
      init[b] = -g.zero * (s0 + s1);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Weight panels: rows r0 .. r0 + 32 (zeros past the matrix), all columns.
//   uint8 q[cols / 4][32][4]   four columns of one row per 32-bit lane
//   float s[cols / bk][32]     per row and block: y = s * q (+ o)
//   float o[cols / bk][32]     (offset types)

constexpr int kNr = 32;  // rows per panel: two 512-bit registers of 16 rows
constexpr int kMt = 6;   // tokens per micro-kernel tile

// Scratch: the panel and one row (pack_panel), plus 16 floats for alignment: 12.375 * cols + 16,
// within gemm_scratch_floats (isa_kernels.h).

inline __m512i bcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

// Stores the first mt tokens' rows [0, nr) of a tile. The micro-kernels are kept out of line and
// this helper inlined into them: when GCC inlined a kernel into its caller it kept the
// accumulator array in memory and stored all 12 registers every iteration (2.3x slower).
template <int Nv>
__attribute__((always_inline)) inline void store_tile(const __m512 (&acc)[Nv][kMt], float* y,
                                                      int64_t ldy, int mt, int nr) {
  for (int v = 0; v < Nv; ++v) {
    const int n = nr - 16 * v < 16 ? nr - 16 * v : 16;
    const __mmask16 m = static_cast<__mmask16>((1u << n) - 1);
    for (int t = 0; t < mt; ++t) _mm512_mask_storeu_ps(y + t * ldy + 16 * v, m, acc[v][t]);
  }
}

// One tile of kMt tokens x (16 * Nv) rows over all columns. Tokens past `mt` repeat a valid row
// and their results are dropped; rows past `nr` are stored only up to nr.
template <int Nv, int Bk, bool Offset>
__attribute__((noinline)) void micro_kernel(const Panel& p, int64_t cols, const ActRow* a, float* y,
                                            int64_t ldy, int mt, int nr) {
  __m512 acc[Nv][kMt];
  for (int v = 0; v < Nv; ++v)
    for (int t = 0; t < kMt; ++t) acc[v][t] = _mm512_setzero_ps();
  const int64_t nblk = cols / Bk;
  for (int64_t b = 0; b < nblk; ++b) {
    __m512i ci[Nv][kMt];
#pragma GCC unroll 8
    for (int t = 0; t < kMt; ++t) {
      const __m512i init = _mm512_set1_epi32(a[t].init[b]);
      for (int v = 0; v < Nv; ++v) ci[v][t] = init;
    }
    const uint8_t* wq = p.q + b * Bk * kNr;
#pragma GCC unroll 8
    for (int k = 0; k < Bk / 4; ++k) {
      __m512i w[Nv];
      for (int v = 0; v < Nv; ++v) w[v] = _mm512_loadu_si512(wq + (k * kNr + 16 * v) * 4);
#pragma GCC unroll 8
      for (int t = 0; t < kMt; ++t) {
        const __m512i x = bcast4(a[t].q + b * Bk + 4 * k);
        for (int v = 0; v < Nv; ++v) ci[v][t] = _mm512_dpbusd_epi32(ci[v][t], w[v], x);
      }
    }
    const int64_t b32 = b * Bk / 32;
    for (int v = 0; v < Nv; ++v) {
      const __m512 s = _mm512_loadu_ps(p.s + b * kNr + 16 * v);
#pragma GCC unroll 8
      for (int t = 0; t < kMt; ++t)
        acc[v][t] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(ci[v][t]),
                                    _mm512_mul_ps(s, _mm512_set1_ps(a[t].d[b32])), acc[v][t]);
      if constexpr (Offset) {
        const __m512 o = _mm512_loadu_ps(p.o + b * kNr + 16 * v);
#pragma GCC unroll 8
        for (int t = 0; t < kMt; ++t)
          acc[v][t] = _mm512_fmadd_ps(o, _mm512_set1_ps(a[t].ds[b32]), acc[v][t]);
      }
    }
  }
  store_tile<Nv>(acc, y, ldy, mt, nr);
}

template <int Bk, bool Offset>
void run_tiles(const Panel& p, int64_t cols, const uint8_t* act, int64_t ab, int64_t T, float* y,
               int64_t ldy, int nr) {
  for (int64_t t0 = 0; t0 < T; t0 += kMt) {
    const int mt = static_cast<int>(T - t0 < kMt ? T - t0 : kMt);
    ActRow a[kMt];
    for (int i = 0; i < kMt; ++i) a[i] = act_row(act + (t0 + (i < mt ? i : mt - 1)) * ab, cols);
    if (nr > 16)
      micro_kernel<2, Bk, Offset>(p, cols, a, y + t0 * ldy, ldy, mt, nr);
    else
      micro_kernel<1, Bk, Offset>(p, cols, a, y + t0 * ldy, ldy, mt, nr);
  }
}

// Every token's rows of one panel (nr valid rows), with the micro-kernel for the type's block.
void run_panel(const GemmType& g, const Panel& p, int64_t cols, const uint8_t* act, int64_t ab,
               int64_t T, float* y, int64_t ldy, int nr) {
  if (g.bk == 16)
    run_tiles<16, false>(p, cols, act, ab, T, y, ldy, nr);
  else if (g.offset)
    run_tiles<32, true>(p, cols, act, ab, T, y, ldy, nr);
  else
    run_tiles<32, false>(p, cols, act, ab, T, y, ldy, nr);
}

void gemm_int8(uint32_t type, const void* w, uint64_t stride, int64_t rows, int64_t cols,
               const void* act, int64_t T, float* y, int64_t ldy, float* scratch) {
  const GemmType g = gemm_type(type);
  const UnpackFn unpack = unpack_fn<false>(type);
  const auto* base = static_cast<const uint8_t*>(w);
  const auto* abase = static_cast<const uint8_t*>(act);
  const int64_t ab = act_row_bytes_for(cols), nblk = cols / g.bk;
  // Scratch: panel quants, scales, offsets, then one row's unpacked quants, scales, offsets.
  auto* f = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(scratch) + 63) & ~uintptr_t{63});
  const Panel p{reinterpret_cast<uint8_t*>(f), f + kNr * cols / 4, f + kNr * cols / 4 + kNr * nblk};
  float* rs = p.o + kNr * nblk;
  float* ro = rs + nblk;
  auto* rq = reinterpret_cast<uint8_t*>(ro + nblk);
  for (int64_t r0 = 0; r0 < rows; r0 += kNr) {
    const int nr = static_cast<int>(rows - r0 < kNr ? rows - r0 : kNr);
    pack_panel<kNr>(unpack, g, base + r0 * stride, stride, nr, cols, p, rq, rs, ro);
    run_panel(g, p, cols, abase, ab, T, y + r0, ldy, nr);
  }
}

// The packed form (gemm_int_common.inc): the panels gemm_int8 builds, kept. Float weights have
// none (their F32 panels would take 4 bytes per weight).
int64_t gemm_panel_bytes(uint32_t type, int64_t cols, int64_t* panel_rows) {
  return panel_bytes_or_none<kNr>(gemm_type(type), cols, panel_rows);
}

void gemm_pack_panels(uint32_t type, const void* w, uint64_t stride, int64_t rows, int64_t cols,
                      int64_t p0, int64_t p1, void* packed, float* scratch) {
  pack_panels<kNr, false>(type, w, stride, rows, cols, p0, p1, packed, scratch);
}

void gemm_packed(uint32_t type, const void* packed, int64_t rows, int64_t cols, int64_t p0,
                 int64_t p1, const void* act, int64_t T, float* y, int64_t ldy) {
  const GemmType g = gemm_type(type);
  const int64_t ab = act_row_bytes_for(cols);
  for_each_packed_panel<kNr>(
      packed, g, rows, cols, p0, p1, [&](const Panel& panel, int64_t r0, int nr) {
        run_panel(g, panel, cols, static_cast<const uint8_t*>(act), ab, T, y + r0, ldy, nr);
      });
}

// ---------------------------------------------------------------------------------------------
// F32, F16 and BF16 weights: F32 activations (no rounding) and a panel of 32 weight rows converted
// to F32, [cols][32], for a 6-token x 32-row FMA tile (twice the width of the AVX2 tile). BF16
// weights also had a vdpbf16ps kernel (AVX512_BF16, activations rounded to BF16, 32 products per
// instruction): on the Xeon this was measured on it issued at half the rate of vfmadd231ps and
// reached 77 GFLOPS per core against this kernel's 115, so it was dropped.

inline __m512 bf16_to_f32(__m256i h) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

// Row `src` of `type` as F32 into row[0..cols).
void widen_row(uint32_t type, const uint8_t* src, int64_t cols, float* row) {
  if (type == kF32) {
    std::memcpy(row, src, static_cast<size_t>(cols) * sizeof(float));
    return;
  }
  int64_t c = 0;
  for (; c + 16 <= cols; c += 16) {
    const __m256i h = loadu256(src + 2 * c);
    _mm512_storeu_ps(row + c, type == kF16 ? _mm512_cvtph_ps(h) : bf16_to_f32(h));
  }
  if (c < cols) {
    const __mmask16 m = static_cast<__mmask16>((1u << (cols - c)) - 1);
    const __m256i h = _mm256_maskz_loadu_epi16(m, src + 2 * c);
    _mm512_mask_storeu_ps(row + c, m, type == kF16 ? _mm512_cvtph_ps(h) : bf16_to_f32(h));
  }
}

template <int Nv>
__attribute__((noinline)) void micro_kernel_f32(const float* panel, int64_t cols,
                                                const float* const* x, float* y, int64_t ldy,
                                                int mt, int nr) {
  __m512 acc[Nv][kMt];
  for (int v = 0; v < Nv; ++v)
    for (int t = 0; t < kMt; ++t) acc[v][t] = _mm512_setzero_ps();
  for (int64_t k = 0; k < cols; ++k) {
    __m512 w[Nv];
    for (int v = 0; v < Nv; ++v) w[v] = _mm512_loadu_ps(panel + k * kNr + 16 * v);
#pragma GCC unroll 8
    for (int t = 0; t < kMt; ++t) {
      const __m512 xb = _mm512_set1_ps(x[t][k]);
      for (int v = 0; v < Nv; ++v) acc[v][t] = _mm512_fmadd_ps(w[v], xb, acc[v][t]);
    }
  }
  store_tile<Nv>(acc, y, ldy, mt, nr);
}

// Scratch: the panel, 32 x cols floats, and one row: 33 * cols + 16 floats, within
// gemm_scratch_floats (isa_kernels.h).
void gemm_float(uint32_t type, const void* w, uint64_t stride, int64_t rows, int64_t cols,
                const void* act, int64_t T, float* y, int64_t ldy, float* scratch) {
  const auto* base = static_cast<const uint8_t*>(w);
  const auto* abase = static_cast<const uint8_t*>(act);
  const int64_t ab = gemm_act_row_bytes(type, cols);
  float* panel =
      reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(scratch) + 63) & ~uintptr_t{63});
  float* row = panel + kNr * cols;
  for (int64_t r0 = 0; r0 < rows; r0 += kNr) {
    const int nr = static_cast<int>(rows - r0 < kNr ? rows - r0 : kNr);
    for (int j = 0; j < kNr; ++j) {
      if (j < nr)
        widen_row(type, base + (r0 + j) * stride, cols, row);
      else
        std::memset(row, 0, static_cast<size_t>(cols) * sizeof(float));
      for (int64_t k = 0; k < cols; ++k) panel[k * kNr + j] = row[k];
    }
    for (int64_t t0 = 0; t0 < T; t0 += kMt) {
      const int mt = static_cast<int>(T - t0 < kMt ? T - t0 : kMt);
      const float* x[kMt];
      for (int i = 0; i < kMt; ++i)
        x[i] = reinterpret_cast<const float*>(abase + (t0 + (i < mt ? i : mt - 1)) * ab);
      float* yt = y + t0 * ldy + r0;
      if (nr > 16)
        micro_kernel_f32<2>(panel, cols, x, yt, ldy, mt, nr);
      else
        micro_kernel_f32<1>(panel, cols, x, yt, ldy, mt, nr);
    }
  }
}

void gemm_rounded(uint32_t type, const void* w, uint64_t stride, int64_t rows, int64_t cols,
                  const void* act, int64_t T, float* y, int64_t ldy, float* scratch) {
  if (is_float(type))
    gemm_float(type, w, stride, rows, cols, act, T, y, ldy, scratch);
  else
    gemm_int8(type, w, stride, rows, cols, act, T, y, ldy, scratch);
}

// ---------------------------------------------------------------------------------------------
// Decode (matvec) for Q4_0, on the AVX2 table's activation encoding (ActQ8_32x2): four blocks per
// 512-bit register and vpdpbusd in place of vpmaddubsw + vpmaddwd. This raised the kernel's
// in-L2 ceiling from 13.0 to 14.9 GB/s per core (bench_kernels Matvec/*/Q4_0/l2, three rounds);
// from DRAM both ran at the host's ~6 GB/s. A Q8_0 kernel of the same kind (two blocks per
// register, the sign moved onto the activations) was slower than AVX2's in L2 (17.1 against
// 21.8 GB/s) and was dropped. Other types run the AVX2 matvec.

const IsaKernels* avx2() {
  static const IsaKernels* const k = avx2_kernels();
  return k;
}

inline __m512i concat256(__m256i lo, __m256i hi) {
  return _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
}

// Four blocks (two ActQ8_32x2 pairs) per step; a last pair or single block runs a scalar loop.
float dot_q4_0(const uint8_t* row, const ActQ8_32x2* a, int64_t nb) {
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  const __m512i lanes4 = _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3);
  constexpr int64_t kB = sizeof(BlockQ4_0);
  __m512 acc = _mm512_setzero_ps();
  int64_t b = 0;
  for (; b + 4 <= nb; b += 4) {
    const uint8_t* blk = row + kB * b;
    __m512i w = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2)));
    w = _mm512_inserti32x4(w, _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + kB + 2)), 1);
    w = _mm512_inserti32x4(w, _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 2 * kB + 2)),
                           2);
    w = _mm512_inserti32x4(w, _mm_loadu_si128(reinterpret_cast<const __m128i*>(blk + 3 * kB + 2)),
                           3);
    const ActQ8_32x2 &x0 = a[b / 2], &x1 = a[b / 2 + 1];
    __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(w, m4),
                                    concat256(loadu256(x0.lo), loadu256(x1.lo)));
    p = _mm512_dpbusd_epi32(p, _mm512_and_si512(_mm512_srli_epi16(w, 4), m4),
                            concat256(loadu256(x0.hi), loadu256(x1.hi)));
    p = _mm512_sub_epi32(p, concat256(loadu256(x0.off), loadu256(x1.off)));
    uint16_t h[4];
    for (int i = 0; i < 4; ++i) std::memcpy(&h[i], blk + kB * i, 2);
    uint64_t hh;
    std::memcpy(&hh, h, 8);
    const __m512 dw = _mm512_permutexvar_ps(
        lanes4, _mm512_castps128_ps512(_mm_cvtph_ps(_mm_cvtsi64_si128(static_cast<int64_t>(hh)))));
    const __m512 dx =
        _mm512_insertf32x8(_mm512_castps256_ps512(_mm256_loadu_ps(x0.d)), _mm256_loadu_ps(x1.d), 1);
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(dw, dx), acc);
  }
  float sum = _mm512_reduce_add_ps(acc);
  for (; b < nb; ++b) {
    const uint8_t* blk = row + kB * b;
    const ActQ8_32x2& x = a[b / 2];
    const int h = static_cast<int>(b % 2);
    int32_t s = 0;
    for (int j = 0; j < 16; ++j)
      s += ((blk[2 + j] & 15) - 8) * x.lo[16 * h + j] + ((blk[2 + j] >> 4) - 8) * x.hi[16 * h + j];
    uint16_t d;
    std::memcpy(&d, blk, 2);
    sum += static_cast<float>(s) * (f16(d) * x.d[4 * h]);
  }
  return sum;
}

void matvec(uint32_t type, const void* w, uint64_t stride, int64_t rows, int64_t cols,
            const void* act, float* y) {
  if (type != kQ4_0) return avx2()->matvec(type, w, stride, rows, cols, act, y);
  const auto* base = static_cast<const uint8_t*>(w);
  for (int64_t r = 0; r < rows; ++r) {
    prefetch_ahead(base + r * stride, stride);
    y[r] = dot_q4_0(base + r * stride, static_cast<const ActQ8_32x2*>(act), cols / 32);
  }
}

}  // namespace

const IsaKernels* avx512_kernels() {
  static const IsaKernels* const table = []() -> const IsaKernels* {
    static IsaKernels k;
    const IsaKernels* base = avx2_kernels();
    if (!base) return nullptr;
    k = *base;
    k.gemm_act_row_bytes = gemm_act_row_bytes;
    k.gemm_round_act = gemm_round_act;
    k.gemm_rounded = gemm_rounded;
    k.gemm_panel_bytes = gemm_panel_bytes;
    k.gemm_pack_panels = gemm_pack_panels;
    k.gemm_packed = gemm_packed;
    k.matvec = matvec;
    k.matvec_own = [](uint32_t type) { return type == kQ4_0; };
    return &k;
  }();
  return table;
}

}  // namespace reprise::kernels

#else  // not built with the AVX-512 flags (see CMakeLists.txt): no table

namespace reprise::kernels {
const IsaKernels* avx512_kernels() {
  return nullptr;
}
}  // namespace reprise::kernels

#endif
