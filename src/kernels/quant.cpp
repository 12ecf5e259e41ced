// Portable scalar reference kernels. The dequantizers and quantizers follow ggml's reference C
// code operation for operation (same float expressions, same evaluation order, same rounding
// helpers), because reprise promises bit-identical decodes and llama-quantize-identical encodes;
// keep that in mind before "simplifying" any arithmetic here. See kernels/README.md.
#include "kernels/quant.h"

#include <algorithm>
#include <bit>
#include <cfloat>
#include <cmath>
#include <cstring>
#include <string>

#include "kernels/quant_blocks.h"
#include "util/error.h"

// Bit-exactness with ggml needs every a * b + c rounded twice, as ggml-base's x86-64 build does.
// Compilers contract such expressions into FMAs when the target has them (GCC by default,
// clang within one expression), so switch contraction off for this file whatever the flags.
#if defined(__clang__)
#pragma clang fp contract(off)
#elif defined(__GNUC__)
#pragma GCC optimize("fp-contract=off")
#endif

namespace reprise::kernels {

// ---------------------------------------------------------------------------------------------
// Half-precision conversions

float fp16_to_fp32(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t mant = h & 0x3FFu;
  if (exp == 0) {
    // Zero or subnormal: mant * 2^-24 is exact in float.
    const float mag = static_cast<float>(mant) * 0x1p-24f;
    return sign ? -mag : mag;
  }
  if (exp == 31) {
    // inf, or a nan returned quiet (payload kept) so it cannot trap later; ggml does the same.
    const uint32_t quiet = mant != 0 ? 0x400000u : 0u;
    return std::bit_cast<float>(sign | 0x7F800000u | quiet | (mant << 13));
  }
  return std::bit_cast<float>(sign | ((exp + (127 - 15)) << 23) | (mant << 13));
}

uint16_t fp32_to_fp16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  const auto sign = static_cast<uint16_t>((bits >> 16) & 0x8000u);
  const uint32_t mag = bits & 0x7FFFFFFFu;
  if (mag > 0x7F800000u) return sign | 0x7E00u;   // nan: canonical quiet nan, as ggml's fallback
  if (mag >= 0x47800000u) return sign | 0x7C00u;  // >= 2^16 (or inf) overflows to inf
  if (mag >= 0x38800000u) {
    // Normal half range: rebias the exponent, then round the 13 dropped bits to nearest even.
    // A carry out of the mantissa correctly bumps the exponent (up to inf at 65520).
    const uint32_t r = mag - ((127u - 15u) << 23);
    uint32_t half = r >> 13;
    const uint32_t rest = r & 0x1FFFu;
    if (rest > 0x1000u || (rest == 0x1000u && (half & 1u))) ++half;
    return static_cast<uint16_t>(sign | half);
  }
  // Subnormal half (or zero): the value in units of 2^-24 is m * 2^(e - 126) with the implicit
  // bit made explicit; shifts above 24 leave less than half a unit, which rounds to zero.
  const uint32_t e = mag >> 23;
  const int shift = 126 - static_cast<int>(e);
  if (shift > 24) return sign;
  const uint32_t m = (mag & 0x7FFFFFu) | 0x800000u;
  uint32_t half = m >> shift;
  const uint32_t rest = m & ((1u << shift) - 1u);
  const uint32_t halfway = 1u << (shift - 1);
  if (rest > halfway || (rest == halfway && (half & 1u))) ++half;  // may carry into 0x0400: fine
  return static_cast<uint16_t>(sign | half);
}

float bf16_to_fp32(uint16_t h) {
  return std::bit_cast<float>(static_cast<uint32_t>(h) << 16);
}

uint16_t fp32_to_bf16(float f) {
  const uint32_t bits = std::bit_cast<uint32_t>(f);
  // Truncating a nan could clear every payload bit and yield inf; setting the quiet bit keeps it
  // a nan (the same bits ggml produces).
  if ((bits & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((bits >> 16) | 0x40u);
  // Round to nearest even; overflow past the largest finite bf16 lands on inf as it should.
  return static_cast<uint16_t>((bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16);
}

namespace {

// ---------------------------------------------------------------------------------------------
// Row plumbing

std::string type_name(TensorType t) {
  if (auto i = tensor_type_info(static_cast<uint32_t>(t))) return std::string(i->name);
  return "type id " + std::to_string(static_cast<uint32_t>(t));
}

[[noreturn]] void throw_unsupported(const char* fn, TensorType t) {
  throw Error(std::string(fn) + ": unsupported tensor type " + type_name(t));
}

// Number of blocks in a row of n elements; a partial block would read or write past the row.
int64_t block_count(const char* fn, TensorType t, int64_t n, int64_t block_elems) {
  if (n < 0 || n % block_elems != 0) {
    throw Error(std::string(fn) + ": " + type_name(t) + " row of " + std::to_string(n) +
                " elements is not a multiple of the block size " + std::to_string(block_elems));
  }
  return n / block_elems;
}

// Rows live in mmapped files with no alignment guarantee, so blocks and halves are copied out.
template <class Block>
Block load_block(const void* row, int64_t i) {
  Block b;
  std::memcpy(&b, static_cast<const unsigned char*>(row) + i * static_cast<int64_t>(sizeof(Block)),
              sizeof(Block));
  return b;
}

template <class Block>
void store_block(void* row, int64_t i, const Block& b) {
  std::memcpy(static_cast<unsigned char*>(row) + i * static_cast<int64_t>(sizeof(Block)), &b,
              sizeof(Block));
}

uint16_t load_u16(const void* row, int64_t i) {
  uint16_t v;
  std::memcpy(&v, static_cast<const unsigned char*>(row) + 2 * i, 2);
  return v;
}

void store_u16(void* row, int64_t i, uint16_t v) {
  std::memcpy(static_cast<unsigned char*>(row) + 2 * i, &v, 2);
}

// ---------------------------------------------------------------------------------------------
// Block decoders. Integer quants are converted to float and multiplied in the order ggml uses;
// the K types form the per-sub-block products (d * sc, dmin * m) first.

void decode(const BlockQ8_0& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int j = 0; j < kQK; ++j) y[j] = static_cast<float>(b.qs[j]) * d;
}

void decode(const BlockQ4_0& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = static_cast<float>((b.qs[j] & 0xF) - 8) * d;
    y[j + kQK / 2] = static_cast<float>((b.qs[j] >> 4) - 8) * d;
  }
}

void decode(const BlockQ4_1& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  const float m = fp16_to_fp32(b.m);
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = static_cast<float>(b.qs[j] & 0xF) * d + m;
    y[j + kQK / 2] = static_cast<float>(b.qs[j] >> 4) * d + m;
  }
}

uint32_t load_u32(const uint8_t* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}

// Fifth bits of Q5_0/Q5_1: bit e of the 32-bit word is element e's bit 4.
void decode(const BlockQ5_0& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  const uint32_t qh = load_u32(b.qh);
  for (int j = 0; j < kQK / 2; ++j) {
    const int lo = (b.qs[j] & 0xF) | static_cast<int>(((qh >> j) << 4) & 0x10);
    const int hi = (b.qs[j] >> 4) | static_cast<int>((qh >> (j + 12)) & 0x10);
    y[j] = static_cast<float>(lo - 16) * d;
    y[j + kQK / 2] = static_cast<float>(hi - 16) * d;
  }
}

void decode(const BlockQ5_1& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  const float m = fp16_to_fp32(b.m);
  const uint32_t qh = load_u32(b.qh);
  for (int j = 0; j < kQK / 2; ++j) {
    const int lo = (b.qs[j] & 0xF) | static_cast<int>(((qh >> j) << 4) & 0x10);
    const int hi = (b.qs[j] >> 4) | static_cast<int>((qh >> (j + 12)) & 0x10);
    y[j] = static_cast<float>(lo) * d + m;
    y[j + kQK / 2] = static_cast<float>(hi) * d + m;
  }
}

// 32 elements in Q4_0 nibble order, each an index into kIq4Levels, times d.
void decode_iq4_32(const uint8_t* qs, float d, float* y) {
  for (int j = 0; j < kQK / 2; ++j) {
    y[j] = d * static_cast<float>(kIq4Levels[qs[j] & 0xF]);
    y[j + kQK / 2] = d * static_cast<float>(kIq4Levels[qs[j] >> 4]);
  }
}

void decode(const BlockIQ4_NL& b, float* y) {
  decode_iq4_32(b.qs, fp16_to_fp32(b.d), y);
}

int iq4_xs_scale(const BlockIQ4_XS& b, int s) {
  return ((b.scales_l[s / 2] >> (4 * (s % 2))) & 0xF) | (((b.scales_h >> (2 * s)) & 3) << 4);
}

void decode(const BlockIQ4_XS& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int s = 0; s < kQKK / 32; ++s)
    decode_iq4_32(b.qs + 16 * s, d * static_cast<float>(iq4_xs_scale(b, s) - 32), y + 32 * s);
}

// Q3_K's 16 signed scales (stored + 32): low nibbles in bytes 0..7 (sub-blocks 0..7 low, 8..15
// high nibble), high 2-bit pairs in bytes 8..11 (sub-block s at bits 2 (s / 4) of byte 8 + s % 4).
int q3_k_scale(const uint8_t* scales, int s) {
  const int lo = s < 8 ? scales[s] & 0xF : scales[s - 8] >> 4;
  return (lo | (((scales[8 + s % 4] >> (2 * (s / 4))) & 3) << 4)) - 32;
}

// Q2_K and Q3_K share the 2-bit plane: element 128h + 32j + l (j < 4, l < 32) is bits 2j..2j+1
// of qs[32h + l], in sub-block 8h + 2j + l / 16.
void decode(const BlockQ3_K& b, float* y) {
  const float d_all = fp16_to_fp32(b.d);
  for (int h = 0; h < 2; ++h) {
    for (int j = 0; j < 4; ++j) {
      const int bit = 4 * h + j;  // the hmask bit of these 32 elements
      for (int half = 0; half < 2; ++half) {
        const float dl = d_all * static_cast<float>(q3_k_scale(b.scales, 8 * h + 2 * j + half));
        for (int l = 16 * half; l < 16 * half + 16; ++l) {
          const int q = ((b.qs[32 * h + l] >> (2 * j)) & 3) - (((b.hmask[l] >> bit) & 1) ? 0 : 4);
          y[128 * h + 32 * j + l] = dl * static_cast<float>(q);
        }
      }
    }
  }
}

void decode(const BlockQ2_K& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  const float dmin = fp16_to_fp32(b.dmin);
  for (int h = 0; h < 2; ++h) {
    for (int j = 0; j < 4; ++j) {
      for (int half = 0; half < 2; ++half) {
        const uint8_t sc = b.scales[8 * h + 2 * j + half];
        const float dl = d * static_cast<float>(sc & 0xF);
        const float ml = dmin * static_cast<float>(sc >> 4);
        for (int l = 16 * half; l < 16 * half + 16; ++l) {
          const int q = (b.qs[32 * h + l] >> (2 * j)) & 3;
          y[128 * h + 32 * j + l] = dl * static_cast<float>(q) - ml;
        }
      }
    }
  }
}

void decode(const BlockQ4_K& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  const float dmin = fp16_to_fp32(b.dmin);
  uint8_t sc[8], m[8];
  unpack_k_scales(b.scales, sc, m);
  for (int c = 0; c < 4; ++c) {  // 4 chunks of 64: sub-blocks 2c (low nibbles), 2c+1 (high)
    const uint8_t* q = b.qs + 32 * c;
    const float d_lo = d * sc[2 * c], m_lo = dmin * m[2 * c];
    const float d_hi = d * sc[2 * c + 1], m_hi = dmin * m[2 * c + 1];
    float* out = y + 64 * c;
    for (int l = 0; l < 32; ++l) out[l] = d_lo * static_cast<float>(q[l] & 0xF) - m_lo;
    for (int l = 0; l < 32; ++l) out[32 + l] = d_hi * static_cast<float>(q[l] >> 4) - m_hi;
  }
}

void decode(const BlockQ5_K& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  const float dmin = fp16_to_fp32(b.dmin);
  uint8_t sc[8], m[8];
  unpack_k_scales(b.scales, sc, m);
  for (int c = 0; c < 4; ++c) {
    const uint8_t* q = b.qs + 32 * c;
    const uint8_t bit_lo = static_cast<uint8_t>(1u << (2 * c));
    const uint8_t bit_hi = static_cast<uint8_t>(2u << (2 * c));
    const float d_lo = d * sc[2 * c], m_lo = dmin * m[2 * c];
    const float d_hi = d * sc[2 * c + 1], m_hi = dmin * m[2 * c + 1];
    float* out = y + 64 * c;
    for (int l = 0; l < 32; ++l) {
      const int v = (q[l] & 0xF) + ((b.qh[l] & bit_lo) ? 16 : 0);
      out[l] = d_lo * static_cast<float>(v) - m_lo;
    }
    for (int l = 0; l < 32; ++l) {
      const int v = (q[l] >> 4) + ((b.qh[l] & bit_hi) ? 16 : 0);
      out[32 + l] = d_hi * static_cast<float>(v) - m_hi;
    }
  }
}

void decode(const BlockQ6_K& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  for (int h = 0; h < 2; ++h) {  // two halves of 128 elements
    const uint8_t* ql = b.ql + 64 * h;
    const uint8_t* qh = b.qh + 32 * h;
    const int8_t* sc = b.scales + 8 * h;
    float* out = y + 128 * h;
    for (int l = 0; l < 32; ++l) {
      const int s = l / 16;
      const int q0 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
      const int q1 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
      const int q2 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
      const int q3 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
      out[l] = d * static_cast<float>(sc[s]) * static_cast<float>(q0);
      out[l + 32] = d * static_cast<float>(sc[s + 2]) * static_cast<float>(q1);
      out[l + 64] = d * static_cast<float>(sc[s + 4]) * static_cast<float>(q2);
      out[l + 96] = d * static_cast<float>(sc[s + 6]) * static_cast<float>(q3);
    }
  }
}

template <class Block, int N>
void dequantize_blocks(const void* row, float* out, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) decode(load_block<Block>(row, i), out + i * N);
}

// Decodes each block exactly as dequantize_row does, then accumulates in double: every product
// of two floats is exact in double, so the only error is the double summation and the final
// rounding to float.
template <class Block, int N>
float dot_blocks(const void* row, const float* x, int64_t nb) {
  double acc = 0.0;
  float y[N];
  for (int64_t i = 0; i < nb; ++i) {
    decode(load_block<Block>(row, i), y);
    const float* xb = x + i * N;
    for (int j = 0; j < N; ++j) acc += static_cast<double>(y[j]) * static_cast<double>(xb[j]);
  }
  return static_cast<float>(acc);
}

// ---------------------------------------------------------------------------------------------
// Quantizers (ggml reference semantics, non-imatrix)

// Round to nearest, ties to even, by the float magic-number trick ggml uses. Kept instead of
// lrintf so that out-of-range inputs produce the same garbage ggml would.
int nearest_int(float v) {
  const float biased = v + 12582912.f;  // 1.5 * 2^23: the integer lands in the low mantissa bits
  return (std::bit_cast<int32_t>(biased) & 0x007FFFFF) - 0x00400000;
}

int clamp_int(int v, int lo, int hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

// The element of largest magnitude (the first one on ties) and that magnitude; 0 and 0 for an
// all-zero block. The symmetric quantizers map it to their most negative level.
struct Extreme {
  float value;
  float amax;
};
Extreme signed_extreme(const float* x, int n) {
  Extreme e{0.0f, 0.0f};
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > e.amax) e = {x[i], ax};
  }
  return e;
}

// Smallest and largest element (the range Q4_1 / Q5_1 spread their levels over).
void block_range(const float* x, int n, float* lo, float* hi) {
  *lo = FLT_MAX;
  *hi = -FLT_MAX;
  for (int j = 0; j < n; ++j) {
    if (x[j] < *lo) *lo = x[j];
    if (x[j] > *hi) *hi = x[j];
  }
}

BlockQ8_0 encode_q8_0(const float* x) {
  float amax = 0.0f;
  for (int j = 0; j < kQK; ++j) {
    const float a = std::fabs(x[j]);
    amax = amax > a ? amax : a;  // not std::max: a nan must propagate as in ggml
  }
  const float d = amax / 127.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  BlockQ8_0 b;
  b.d = fp32_to_fp16(d);
  // The unrounded d is used for the quants, matching ggml (not the fp16-rounded one).
  for (int j = 0; j < kQK; ++j) b.qs[j] = static_cast<int8_t>(std::round(x[j] * id));
  return b;
}

BlockQ4_0 encode_q4_0(const float* x) {
  // The signed extreme maps to level 0 (-8), which uses the asymmetric range fully.
  const float d = signed_extreme(x, kQK).value / -8.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  BlockQ4_0 b;
  b.d = fp32_to_fp16(d);
  for (int j = 0; j < kQK / 2; ++j) {
    // Truncation of (v + 8.5) toward zero is ggml's rounding; v >= -8 keeps it non-negative.
    const int lo = static_cast<int8_t>(x[j] * id + 8.5f);
    const int hi = static_cast<int8_t>(x[j + kQK / 2] * id + 8.5f);
    b.qs[j] = static_cast<uint8_t>((lo < 15 ? lo : 15) | ((hi < 15 ? hi : 15) << 4));
  }
  return b;
}

// The block minimum maps to level 0 and the maximum to 15 (or just below: the scale is rounded
// to fp16 after the levels are chosen with the unrounded one, as in ggml).
BlockQ4_1 encode_q4_1(const float* x) {
  float lo, hi;
  block_range(x, kQK, &lo, &hi);
  const float d = (hi - lo) / 15.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  BlockQ4_1 b;
  b.d = fp32_to_fp16(d);
  b.m = fp32_to_fp16(lo);
  for (int j = 0; j < kQK / 2; ++j) {
    // Truncation of (v + 0.5) is ggml's rounding; v >= 0 here up to float error.
    const int l = static_cast<int8_t>((x[j] - lo) * id + 0.5f);
    const int h = static_cast<int8_t>((x[j + kQK / 2] - lo) * id + 0.5f);
    b.qs[j] = static_cast<uint8_t>(static_cast<uint8_t>(l < 15 ? l : 15) |
                                   static_cast<uint8_t>(h < 15 ? h : 15) << 4);
  }
  return b;
}

// Weighted least-squares fit of x ~ scale * L + offset with L in [0, nmax] and offset <= 0
// (ggml's make_qkx2_quants; squared error, or absolute error with `abs_error` as Q2_K uses). Tries
// nstep + 1 grid scalings around the min/max one, refitting scale and offset to each candidate
// quantization, and keeps the best. Returns the scale and stores -offset in *neg_offset. The
// running offset is updated when a candidate wins and later candidates are derived from it: that is
// how ggml does it.
float fit_scale_offset(int n, int nmax, const float* x, const float* w, uint8_t* L,
                       float* neg_offset, uint8_t* L_try, float rmin, float rdelta, int nstep,
                       bool abs_error) {
  float lo = x[0];
  float hi = x[0];
  float sum_w = w[0];
  float sum_x = sum_w * x[0];
  for (int i = 1; i < n; ++i) {
    if (x[i] < lo) lo = x[i];
    if (x[i] > hi) hi = x[i];
    sum_w += w[i];
    sum_x += w[i] * x[i];
  }
  if (lo > 0) lo = 0;
  if (hi == lo) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    *neg_offset = -lo;
    return 0.0f;
  }
  const float fn = static_cast<float>(nmax);
  float iscale = fn / (hi - lo);
  float scale = 1 / iscale;
  float best_err = 0;
  for (int i = 0; i < n; ++i) {
    L[i] = static_cast<uint8_t>(clamp_int(nearest_int(iscale * (x[i] - lo)), 0, nmax));
    const float diff = scale * static_cast<float>(L[i]) + lo - x[i];
    best_err += w[i] * (abs_error ? std::fabs(diff) : diff * diff);
  }
  if (nstep < 1) {
    *neg_offset = -lo;
    return scale;
  }
  for (int step = 0; step <= nstep; ++step) {
    iscale = (rmin + rdelta * static_cast<float>(step) + fn) / (hi - lo);
    float sum_l = 0, sum_l2 = 0, sum_xl = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_int(nearest_int(iscale * (x[i] - lo)), 0, nmax);
      L_try[i] = static_cast<uint8_t>(l);
      const float fl = static_cast<float>(l);
      sum_l += w[i] * fl;
      sum_l2 += w[i] * fl * fl;
      sum_xl += w[i] * fl * x[i];
    }
    const float det = sum_w * sum_l2 - sum_l * sum_l;
    if (det > 0) {
      float this_scale = (sum_w * sum_xl - sum_x * sum_l) / det;
      float this_offset = (sum_l2 * sum_x - sum_l * sum_xl) / det;
      if (this_offset > 0) {  // the offset must stay <= 0: refit the scale alone
        this_offset = 0;
        this_scale = sum_xl / sum_l2;
      }
      float err = 0;
      for (int i = 0; i < n; ++i) {
        const float diff = this_scale * static_cast<float>(L_try[i]) + this_offset - x[i];
        err += w[i] * (abs_error ? std::fabs(diff) : diff * diff);
      }
      if (err < best_err) {
        for (int i = 0; i < n; ++i) L[i] = L_try[i];
        best_err = err;
        scale = this_scale;
        lo = this_offset;
      }
    }
  }
  *neg_offset = -lo;
  return scale;
}

// Symmetric scale fit with L in [-nmax, nmax) stored as L + nmax, weighting each element by x^2
// (ggml's make_qx_quants with rmse_type 1 and no importance weights). Starts from the scale that
// maps the signed extreme to -nmax, then tries 18 nearby scalings and keeps the one maximising
// (sum w x l)^2 / sum w l^2, i.e. minimising the weighted squared error of the refit scale.
float fit_symmetric_scale(int n, int nmax, const float* x, int8_t* L) {
  constexpr float kGroupMaxEps = 1e-15f;
  const auto [extreme, amax] = signed_extreme(x, n);
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < n; ++i) L[i] = 0;
    return 0.0f;
  }
  const float fn = static_cast<float>(nmax);
  float iscale = -fn / extreme;
  float sumlx = 0;
  float suml2 = 0;
  for (int i = 0; i < n; ++i) {
    const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
    L[i] = static_cast<int8_t>(l + nmax);
    const float w = x[i] * x[i];
    const float fl = static_cast<float>(l);
    sumlx += w * x[i] * fl;
    suml2 += w * fl * fl;
  }
  float scale = suml2 != 0 ? sumlx / suml2 : 0.0f;
  float best = scale * sumlx;
  for (int step = -9; step <= 9; ++step) {
    if (step == 0) continue;
    iscale = -(fn + 0.1f * static_cast<float>(step)) / extreme;
    sumlx = 0;
    suml2 = 0;
    for (int i = 0; i < n; ++i) {
      const int l = clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1);
      const float w = x[i] * x[i];
      const float fl = static_cast<float>(l);
      sumlx += w * x[i] * fl;
      suml2 += w * fl * fl;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (int i = 0; i < n; ++i) {
        L[i] = static_cast<int8_t>(nmax + clamp_int(nearest_int(iscale * x[i]), -nmax, nmax - 1));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}

// Shared by Q4_K and Q5_K: fits the 8 sub-blocks, quantizes their scales and offsets to 6 bits
// against fp16 super-scales, then requantizes every element against the rounded scales so the
// levels match what the decoder will multiply them by.
void encode_k_scales_and_levels(const float* x, int nmax, float rmin, int nstep, uint8_t* packed,
                                uint16_t* d_out, uint16_t* dmin_out, uint8_t* L) {
  float scales[kQKK / 32];
  float mins[kQKK / 32];
  float weights[32];
  uint8_t L_try[32];
  float max_scale = 0;  // scales are non-negative since the offset absorbs the minimum
  float max_min = 0;
  for (int j = 0; j < kQKK / 32; ++j) {
    const float* xs = x + 32 * j;
    // Weight elements by RMS + |x|: larger magnitudes matter more, none is ignored.
    float sum_x2 = 0;
    for (int l = 0; l < 32; ++l) sum_x2 += xs[l] * xs[l];
    const float av_x = std::sqrt(sum_x2 / 32.0f);
    for (int l = 0; l < 32; ++l) weights[l] = av_x + std::fabs(xs[l]);
    scales[j] =
        fit_scale_offset(32, nmax, xs, weights, L + 32 * j, &mins[j], L_try, rmin, 0.1f, nstep,
                         /*abs_error=*/false);
    if (scales[j] > max_scale) max_scale = scales[j];
    if (mins[j] > max_min) max_min = mins[j];
  }

  const float inv_scale = max_scale > 0 ? 63.f / max_scale : 0.f;
  const float inv_min = max_min > 0 ? 63.f / max_min : 0.f;
  for (int j = 0; j < kQKK / 32; ++j) {
    // ggml narrows to uint8_t before clamping; keep that order.
    uint8_t ls = static_cast<uint8_t>(nearest_int(inv_scale * scales[j]));
    uint8_t lm = static_cast<uint8_t>(nearest_int(inv_min * mins[j]));
    if (ls > 63) ls = 63;
    if (lm > 63) lm = 63;
    if (j < 4) {
      packed[j] = ls;
      packed[j + 4] = lm;
    } else {
      packed[j + 4] = static_cast<uint8_t>((ls & 0xF) | ((lm & 0xF) << 4));
      packed[j - 4] |= static_cast<uint8_t>((ls >> 4) << 6);
      packed[j] |= static_cast<uint8_t>((lm >> 4) << 6);
    }
  }
  *d_out = fp32_to_fp16(max_scale / 63.f);
  *dmin_out = fp32_to_fp16(max_min / 63.f);

  const float d_all = fp16_to_fp32(*d_out);
  const float dmin_all = fp16_to_fp32(*dmin_out);
  uint8_t sc[8], mn[8];
  unpack_k_scales(packed, sc, mn);
  for (int j = 0; j < kQKK / 32; ++j) {
    const float d = d_all * sc[j];
    if (d == 0) continue;  // keep the fit's levels; they decode to -offset regardless
    const float dm = dmin_all * mn[j];
    for (int i = 0; i < 32; ++i) {
      L[32 * j + i] =
          static_cast<uint8_t>(clamp_int(nearest_int((x[32 * j + i] + dm) / d), 0, nmax));
    }
  }
}

BlockQ4_K encode_q4_k(const float* x) {
  BlockQ4_K b;
  uint8_t L[kQKK];
  encode_k_scales_and_levels(x, 15, -1.0f, 20, b.scales, &b.d, &b.dmin, L);
  for (int c = 0; c < 4; ++c) {
    for (int l = 0; l < 32; ++l) {
      b.qs[32 * c + l] = static_cast<uint8_t>(L[64 * c + l] | (L[64 * c + 32 + l] << 4));
    }
  }
  return b;
}

BlockQ5_K encode_q5_k(const float* x) {
  BlockQ5_K b;
  uint8_t L[kQKK];
  encode_k_scales_and_levels(x, 31, -0.5f, 15, b.scales, &b.d, &b.dmin, L);
  std::memset(b.qh, 0, sizeof(b.qh));
  for (int c = 0; c < 4; ++c) {
    const uint8_t bit_lo = static_cast<uint8_t>(1u << (2 * c));
    const uint8_t bit_hi = static_cast<uint8_t>(2u << (2 * c));
    for (int l = 0; l < 32; ++l) {
      int q_lo = L[64 * c + l];
      int q_hi = L[64 * c + 32 + l];
      if (q_lo > 15) {
        q_lo -= 16;
        b.qh[l] |= bit_lo;
      }
      if (q_hi > 15) {
        q_hi -= 16;
        b.qh[l] |= bit_hi;
      }
      b.qs[32 * c + l] = static_cast<uint8_t>(q_lo | (q_hi << 4));
    }
  }
  return b;
}

BlockQ6_K encode_q6_k(const float* x) {
  constexpr float kGroupMaxEps = 1e-15f;
  BlockQ6_K b;
  int8_t L[kQKK];
  float scales[kQKK / 16];
  for (int k = 0; k < kQKK / 16; ++k)
    scales[k] = fit_symmetric_scale(16, 32, x + 16 * k, L + 16 * k);
  // Signed: the sub-block scale of largest magnitude.
  const auto [max_scale, max_abs_scale] = signed_extreme(scales, kQKK / 16);
  if (max_abs_scale < kGroupMaxEps) {
    std::memset(&b, 0, sizeof(b));
    return b;
  }

  // Map the largest sub-block scale to -128 so the int8 scales use their full range.
  const float iscale = -128.f / max_scale;
  b.d = fp32_to_fp16(1 / iscale);
  for (int k = 0; k < kQKK / 16; ++k) {
    const int s = nearest_int(iscale * scales[k]);
    b.scales[k] = static_cast<int8_t>(s < 127 ? s : 127);
  }
  const float d_all = fp16_to_fp32(b.d);
  for (int k = 0; k < kQKK / 16; ++k) {
    const float d = d_all * static_cast<float>(b.scales[k]);
    if (d == 0) continue;  // keep the fit's levels; they decode to zero regardless
    for (int i = 0; i < 16; ++i) {
      const int l = clamp_int(nearest_int(x[16 * k + i] / d), -32, 31);
      L[16 * k + i] = static_cast<int8_t>(l + 32);
    }
  }

  for (int h = 0; h < 2; ++h) {
    const int8_t* Lh = L + 128 * h;
    uint8_t* ql = b.ql + 64 * h;
    uint8_t* qh = b.qh + 32 * h;
    for (int l = 0; l < 32; ++l) {
      ql[l] = static_cast<uint8_t>((Lh[l] & 0xF) | ((Lh[l + 64] & 0xF) << 4));
      ql[l + 32] = static_cast<uint8_t>((Lh[l + 32] & 0xF) | ((Lh[l + 96] & 0xF) << 4));
      qh[l] = static_cast<uint8_t>((Lh[l] >> 4) | ((Lh[l + 32] >> 4) << 2) |
                                   ((Lh[l + 64] >> 4) << 4) | ((Lh[l + 96] >> 4) << 6));
    }
  }
  return b;
}

// Q5_0: as Q4_0 with 32 levels; the signed extreme maps to level 0 (-16).
BlockQ5_0 encode_q5_0(const float* x) {
  const float d = signed_extreme(x, kQK).value / -16.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  BlockQ5_0 b;
  b.d = fp32_to_fp16(d);
  uint32_t qh = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    const int lo = std::min(31, static_cast<int>(static_cast<int8_t>(x[j] * id + 16.5f)));
    const int hi = std::min(31, static_cast<int>(static_cast<int8_t>(x[j + kQK / 2] * id + 16.5f)));
    b.qs[j] = static_cast<uint8_t>((lo & 0xF) | ((hi & 0xF) << 4));
    qh |= static_cast<uint32_t>((lo & 0x10) >> 4) << j;
    qh |= static_cast<uint32_t>((hi & 0x10) >> 4) << (j + kQK / 2);
  }
  std::memcpy(b.qh, &qh, 4);
  return b;
}

// Q5_1: as Q4_1 with 32 levels. ggml does not clamp here: the level of the maximum is at most
// 31.5 truncated, i.e. 31.
BlockQ5_1 encode_q5_1(const float* x) {
  float lo, hi;
  block_range(x, kQK, &lo, &hi);
  const float d = (hi - lo) / 31.0f;
  const float id = d != 0.0f ? 1.0f / d : 0.0f;
  BlockQ5_1 b;
  b.d = fp32_to_fp16(d);
  b.m = fp32_to_fp16(lo);
  uint32_t qh = 0;
  for (int j = 0; j < kQK / 2; ++j) {
    const int l = static_cast<uint8_t>(static_cast<int>((x[j] - lo) * id + 0.5f));
    const int h = static_cast<uint8_t>(static_cast<int>((x[j + kQK / 2] - lo) * id + 0.5f));
    b.qs[j] = static_cast<uint8_t>((l & 0xF) | ((h & 0xF) << 4));
    qh |= static_cast<uint32_t>((l & 0x10) >> 4) << j;
    qh |= static_cast<uint32_t>((h & 0x10) >> 4) << (j + kQK / 2);
  }
  std::memcpy(b.qh, &qh, 4);
  return b;
}

// The index of the level nearest to v (ties to the lower level), by bisection over the sorted
// kIq4Levels.
int nearest_iq4_level(float v) {
  const int8_t* lv = kIq4Levels;
  if (v <= lv[0]) return 0;
  if (v >= lv[15]) return 15;
  int lo = 0, hi = 15;
  while (hi - lo > 1) {
    const int mid = (lo + hi) / 2;
    if (v < lv[mid])
      hi = mid;
    else
      lo = mid;
  }
  return v - lv[hi - 1] < lv[hi] - v ? hi - 1 : hi;
}

// Best scale for 32 elements on the IQ4 levels (x^2-weighted least squares), as llama-quantize
// does without an imatrix (ggml's quantize_iq4_nl / quantize_iq4_xs, ntry = 7; ggml's
// quantize_row_iq4_nl_ref skips the search and differs): start from d = extreme / 127 and refit
// it to the levels that scale picks, then try the 15 scalings that put the extreme at level
// value -127 + t (t = -7..7) and keep the refit with the largest (sum w x q)^2 / sum w q^2.
// L gets the first guess's indices (callers recompute them from the final scale). Returns 0 for
// an all-(near-)zero block.
float fit_iq4_scale(const float* x, uint8_t* L) {
  constexpr float kGroupMaxEps = 1e-15f;
  constexpr int kTries = 7;
  float w[32];
  for (int j = 0; j < 32; ++j) w[j] = x[j] * x[j];
  const auto [extreme, amax] = signed_extreme(x, 32);
  if (amax < kGroupMaxEps) return 0.0f;
  const float lv0 = static_cast<float>(kIq4Levels[0]);
  float d = -extreme / lv0;
  float id = 1 / d;
  float sumqx = 0, sumq2 = 0;
  for (int j = 0; j < 32; ++j) {
    const int l = nearest_iq4_level(id * x[j]);
    L[j] = static_cast<uint8_t>(l);
    const float q = kIq4Levels[l];
    sumqx += w[j] * q * x[j];
    sumq2 += w[j] * q * q;
  }
  d = sumq2 > 0 ? sumqx / sumq2 : 0.0f;
  float best = d * sumqx;
  for (int t = -kTries; t <= kTries; ++t) {
    id = static_cast<float>(t + kIq4Levels[0]) / extreme;
    sumqx = sumq2 = 0;
    for (int j = 0; j < 32; ++j) {
      const float q = kIq4Levels[nearest_iq4_level(id * x[j])];
      sumqx += w[j] * q * x[j];
      sumq2 += w[j] * q * q;
    }
    if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
      d = sumqx / sumq2;
      best = d * sumqx;
    }
  }
  return d;
}

// Level indices in Q4_0 nibble order.
void pack_nibbles32(const uint8_t* L, uint8_t* qs) {
  for (int j = 0; j < 16; ++j) qs[j] = static_cast<uint8_t>(L[j] | (L[j + 16] << 4));
}

BlockIQ4_NL encode_iq4_nl(const float* x) {
  uint8_t L[32];
  const float d = fit_iq4_scale(x, L);
  BlockIQ4_NL b;
  b.d = fp32_to_fp16(d);
  // The indices are re-chosen against the unrounded scale (an all-zero block gets level 8,
  // the one nearest 0).
  const float id = d != 0 ? 1 / d : 0.0f;
  for (int j = 0; j < 32; ++j) L[j] = static_cast<uint8_t>(nearest_iq4_level(id * x[j]));
  pack_nibbles32(L, b.qs);
  return b;
}

BlockIQ4_XS encode_iq4_xs(const float* x) {
  uint8_t L[kQKK];
  float scales[kQKK / 32];
  for (int s = 0; s < kQKK / 32; ++s) scales[s] = fit_iq4_scale(x + 32 * s, L + 32 * s);
  const float max_scale = signed_extreme(scales, kQKK / 32).value;
  BlockIQ4_XS b;
  std::memset(&b, 0, sizeof(b));
  // Sub-block scales become 6-bit multiples of d in [-32, 31], the largest one -32.
  const float d = -max_scale / 32;
  b.d = fp32_to_fp16(d);
  const float id = d != 0 ? 1 / d : 0.0f;
  for (int s = 0; s < kQKK / 32; ++s) {
    const int l = clamp_int(nearest_int(id * scales[s]), -32, 31);
    // The indices are re-chosen against the integer sub-block scale times the unrounded d.
    const float dl = d * static_cast<float>(l);
    const float idl = dl != 0 ? 1 / dl : 0.0f;
    for (int j = 0; j < 32; ++j)
      L[32 * s + j] = static_cast<uint8_t>(nearest_iq4_level(idl * x[32 * s + j]));
    const int stored = l + 32;
    b.scales_l[s / 2] |= static_cast<uint8_t>((stored & 0xF) << (4 * (s % 2)));
    b.scales_h |= static_cast<uint16_t>((stored >> 4) << (2 * s));
    pack_nibbles32(L + 32 * s, b.qs + 16 * s);
  }
  return b;
}

// The 2-bit plane of Q2_K/Q3_K: element 128h + 32j + l goes to bits 2j of qs[32h + l].
void pack_2bit(const uint8_t* L, uint8_t* qs) {
  for (int h = 0; h < 2; ++h)
    for (int l = 0; l < 32; ++l) {
      const uint8_t* Lh = L + 128 * h;
      qs[32 * h + l] =
          static_cast<uint8_t>(Lh[l] | (Lh[l + 32] << 2) | (Lh[l + 64] << 4) | (Lh[l + 96] << 6));
    }
}

// Symmetric fit of 16 elements to L in [-4, 3] (ggml's make_q3_quants with its rmse refinement):
// start from the scale mapping the signed extreme to -4, then up to 5 passes that move single
// elements to the level the others' refit scale prefers when that raises (sum w x l)^2 / sum w l^2,
// with w = x^2. Stores L + 4 and returns the refit scale.
float fit_q3_scale(const float* x, int8_t* L) {
  constexpr float kGroupMaxEps = 1e-15f;
  constexpr int kN = 16, kNmax = 4;
  const auto [extreme, amax] = signed_extreme(x, kN);
  if (amax < kGroupMaxEps) {
    for (int i = 0; i < kN; ++i) L[i] = 0;
    return 0.0f;
  }
  const float iscale = -static_cast<float>(kNmax) / extreme;
  float sumlx = 0, suml2 = 0;
  for (int i = 0; i < kN; ++i) {
    const int l = clamp_int(nearest_int(iscale * x[i]), -kNmax, kNmax - 1);
    L[i] = static_cast<int8_t>(l);
    const float w = x[i] * x[i];
    const float fl = static_cast<float>(l);
    sumlx += w * x[i] * fl;
    suml2 += w * fl * fl;
  }
  for (int pass = 0; pass < 5; ++pass) {
    int changed = 0;
    for (int i = 0; i < kN; ++i) {
      const float w = x[i] * x[i];
      const float li = static_cast<float>(L[i]);
      float slx = sumlx - w * x[i] * li;
      if (slx > 0) {
        float sl2 = suml2 - w * li * li;
        const int nl = clamp_int(nearest_int(x[i] * sl2 / slx), -kNmax, kNmax - 1);
        if (nl != L[i]) {
          const float fn = static_cast<float>(nl);
          slx += w * x[i] * fn;
          sl2 += w * fn * fn;
          if (sl2 > 0 && slx * slx * suml2 > sumlx * sumlx * sl2) {
            L[i] = static_cast<int8_t>(nl);
            sumlx = slx;
            suml2 = sl2;
            ++changed;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (int i = 0; i < kN; ++i) L[i] = static_cast<int8_t>(L[i] + kNmax);
  return suml2 > 0.0f ? sumlx / suml2 : 0.0f;
}

BlockQ3_K encode_q3_k(const float* x) {
  int8_t L[kQKK];
  float scales[kQKK / 16];
  for (int s = 0; s < kQKK / 16; ++s) scales[s] = fit_q3_scale(x + 16 * s, L + 16 * s);
  const float max_scale = signed_extreme(scales, kQKK / 16).value;
  BlockQ3_K b;
  std::memset(&b, 0, sizeof(b));
  if (max_scale != 0) {
    // Map the largest sub-block scale to -32 so the 6-bit scales use their full range.
    const float iscale = -32.f / max_scale;
    for (int s = 0; s < kQKK / 16; ++s) {
      // ggml narrows to int8_t before clamping; the value always fits.
      const int l = clamp_int(static_cast<int8_t>(nearest_int(iscale * scales[s])), -32, 31) + 32;
      if (s < 8)
        b.scales[s] = static_cast<uint8_t>(l & 0xF);
      else
        b.scales[s - 8] |= static_cast<uint8_t>((l & 0xF) << 4);
      b.scales[8 + s % 4] |= static_cast<uint8_t>((l >> 4) << (2 * (s / 4)));
    }
    b.d = fp32_to_fp16(1 / iscale);
  }
  const float d_all = fp16_to_fp32(b.d);
  for (int s = 0; s < kQKK / 16; ++s) {
    const float d = d_all * static_cast<float>(q3_k_scale(b.scales, s));
    if (d == 0) continue;  // keep the fit's levels; they decode to zero regardless
    for (int i = 0; i < 16; ++i) {
      L[16 * s + i] = static_cast<int8_t>(clamp_int(nearest_int(x[16 * s + i] / d), -4, 3) + 4);
    }
  }
  uint8_t low[kQKK];
  for (int e = 0; e < kQKK; ++e) {
    int l = L[e];
    if (l > 3) {
      b.hmask[e % 32] |= static_cast<uint8_t>(1u << (e / 32));
      l -= 4;
    }
    low[e] = static_cast<uint8_t>(l);
  }
  pack_2bit(low, b.qs);
  return b;
}

BlockQ2_K encode_q2_k(const float* x) {
  constexpr float kLevels = 15.f;  // scales and mins are 4-bit multiples of d and dmin
  uint8_t L[kQKK];
  uint8_t L_try[16];
  float weights[16];
  float scales[kQKK / 16];
  float mins[kQKK / 16];
  float max_scale = 0, max_min = 0;  // both non-negative: the offset absorbs the minimum
  for (int s = 0; s < kQKK / 16; ++s) {
    const float* xs = x + 16 * s;
    for (int l = 0; l < 16; ++l) weights[l] = std::fabs(xs[l]);
    scales[s] = fit_scale_offset(16, 3, xs, weights, L + 16 * s, &mins[s], L_try, -0.5f, 0.1f, 15,
                                 /*abs_error=*/true);
    if (scales[s] > max_scale) max_scale = scales[s];
    if (mins[s] > max_min) max_min = mins[s];
  }
  BlockQ2_K b;
  std::memset(&b, 0, sizeof(b));
  if (max_scale > 0) {
    const float iscale = kLevels / max_scale;
    for (int s = 0; s < kQKK / 16; ++s)
      b.scales[s] = static_cast<uint8_t>(nearest_int(iscale * scales[s]));
    b.d = fp32_to_fp16(max_scale / kLevels);
  }
  if (max_min > 0) {
    const float iscale = kLevels / max_min;
    for (int s = 0; s < kQKK / 16; ++s)
      b.scales[s] |= static_cast<uint8_t>(nearest_int(iscale * mins[s]) << 4);
    b.dmin = fp32_to_fp16(max_min / kLevels);
  }
  for (int s = 0; s < kQKK / 16; ++s) {
    const float d = fp16_to_fp32(b.d) * static_cast<float>(b.scales[s] & 0xF);
    if (d == 0) continue;  // keep the fit's levels; they decode to -offset regardless
    const float dm = fp16_to_fp32(b.dmin) * static_cast<float>(b.scales[s] >> 4);
    for (int i = 0; i < 16; ++i)
      L[16 * s + i] = static_cast<uint8_t>(clamp_int(nearest_int((x[16 * s + i] + dm) / d), 0, 3));
  }
  pack_2bit(L, b.qs);
  return b;
}

template <class Block, int N, Block (*Encode)(const float*)>
void quantize_blocks(const float* x, void* row, int64_t nb) {
  for (int64_t i = 0; i < nb; ++i) store_block(row, i, Encode(x + i * N));
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Row entry points

void dequantize_row(TensorType type, const void* row, float* out, int64_t n) {
  constexpr const char* kFn = "dequantize_row";
  switch (type) {
    case TensorType::F32: {
      const int64_t count = block_count(kFn, type, n, 1);
      if (count > 0) std::memcpy(out, row, static_cast<size_t>(count) * sizeof(float));
      return;
    }
    case TensorType::F16: {
      const int64_t count = block_count(kFn, type, n, 1);
      for (int64_t i = 0; i < count; ++i) out[i] = fp16_to_fp32(load_u16(row, i));
      return;
    }
    case TensorType::BF16: {
      const int64_t count = block_count(kFn, type, n, 1);
      for (int64_t i = 0; i < count; ++i) out[i] = bf16_to_fp32(load_u16(row, i));
      return;
    }
    case TensorType::Q8_0:
      return dequantize_blocks<BlockQ8_0, kQK>(row, out, block_count(kFn, type, n, kQK));
    case TensorType::Q4_0:
      return dequantize_blocks<BlockQ4_0, kQK>(row, out, block_count(kFn, type, n, kQK));
    case TensorType::Q4_1:
      return dequantize_blocks<BlockQ4_1, kQK>(row, out, block_count(kFn, type, n, kQK));
    case TensorType::Q5_0:
      return dequantize_blocks<BlockQ5_0, kQK>(row, out, block_count(kFn, type, n, kQK));
    case TensorType::Q5_1:
      return dequantize_blocks<BlockQ5_1, kQK>(row, out, block_count(kFn, type, n, kQK));
    case TensorType::IQ4_NL:
      return dequantize_blocks<BlockIQ4_NL, kQK>(row, out, block_count(kFn, type, n, kQK));
    case TensorType::IQ4_XS:
      return dequantize_blocks<BlockIQ4_XS, kQKK>(row, out, block_count(kFn, type, n, kQKK));
    case TensorType::Q3_K:
      return dequantize_blocks<BlockQ3_K, kQKK>(row, out, block_count(kFn, type, n, kQKK));
    case TensorType::Q2_K:
      return dequantize_blocks<BlockQ2_K, kQKK>(row, out, block_count(kFn, type, n, kQKK));
    case TensorType::Q4_K:
      return dequantize_blocks<BlockQ4_K, kQKK>(row, out, block_count(kFn, type, n, kQKK));
    case TensorType::Q5_K:
      return dequantize_blocks<BlockQ5_K, kQKK>(row, out, block_count(kFn, type, n, kQKK));
    case TensorType::Q6_K:
      return dequantize_blocks<BlockQ6_K, kQKK>(row, out, block_count(kFn, type, n, kQKK));
    default:
      throw_unsupported(kFn, type);
  }
}

float dot_row(TensorType type, const void* row, const float* x, int64_t n) {
  constexpr const char* kFn = "dot_row";
  switch (type) {
    case TensorType::F32: {
      const int64_t count = block_count(kFn, type, n, 1);
      double acc = 0.0;
      for (int64_t i = 0; i < count; ++i) {
        float v;
        std::memcpy(&v, static_cast<const unsigned char*>(row) + 4 * i, 4);
        acc += static_cast<double>(v) * static_cast<double>(x[i]);
      }
      return static_cast<float>(acc);
    }
    case TensorType::F16: {
      const int64_t count = block_count(kFn, type, n, 1);
      double acc = 0.0;
      for (int64_t i = 0; i < count; ++i) {
        acc += static_cast<double>(fp16_to_fp32(load_u16(row, i))) * static_cast<double>(x[i]);
      }
      return static_cast<float>(acc);
    }
    case TensorType::BF16: {
      const int64_t count = block_count(kFn, type, n, 1);
      double acc = 0.0;
      for (int64_t i = 0; i < count; ++i) {
        acc += static_cast<double>(bf16_to_fp32(load_u16(row, i))) * static_cast<double>(x[i]);
      }
      return static_cast<float>(acc);
    }
    case TensorType::Q8_0:
      return dot_blocks<BlockQ8_0, kQK>(row, x, block_count(kFn, type, n, kQK));
    case TensorType::Q4_0:
      return dot_blocks<BlockQ4_0, kQK>(row, x, block_count(kFn, type, n, kQK));
    case TensorType::Q4_1:
      return dot_blocks<BlockQ4_1, kQK>(row, x, block_count(kFn, type, n, kQK));
    case TensorType::Q5_0:
      return dot_blocks<BlockQ5_0, kQK>(row, x, block_count(kFn, type, n, kQK));
    case TensorType::Q5_1:
      return dot_blocks<BlockQ5_1, kQK>(row, x, block_count(kFn, type, n, kQK));
    case TensorType::IQ4_NL:
      return dot_blocks<BlockIQ4_NL, kQK>(row, x, block_count(kFn, type, n, kQK));
    case TensorType::IQ4_XS:
      return dot_blocks<BlockIQ4_XS, kQKK>(row, x, block_count(kFn, type, n, kQKK));
    case TensorType::Q3_K:
      return dot_blocks<BlockQ3_K, kQKK>(row, x, block_count(kFn, type, n, kQKK));
    case TensorType::Q2_K:
      return dot_blocks<BlockQ2_K, kQKK>(row, x, block_count(kFn, type, n, kQKK));
    case TensorType::Q4_K:
      return dot_blocks<BlockQ4_K, kQKK>(row, x, block_count(kFn, type, n, kQKK));
    case TensorType::Q5_K:
      return dot_blocks<BlockQ5_K, kQKK>(row, x, block_count(kFn, type, n, kQKK));
    case TensorType::Q6_K:
      return dot_blocks<BlockQ6_K, kQKK>(row, x, block_count(kFn, type, n, kQKK));
    default:
      throw_unsupported(kFn, type);
  }
}

void quantize_row(TensorType type, const float* x, void* row, int64_t n) {
  constexpr const char* kFn = "quantize_row";
  switch (type) {
    case TensorType::F32: {
      const int64_t count = block_count(kFn, type, n, 1);
      if (count > 0) std::memcpy(row, x, static_cast<size_t>(count) * sizeof(float));
      return;
    }
    case TensorType::F16: {
      const int64_t count = block_count(kFn, type, n, 1);
      for (int64_t i = 0; i < count; ++i) store_u16(row, i, fp32_to_fp16(x[i]));
      return;
    }
    case TensorType::BF16: {
      const int64_t count = block_count(kFn, type, n, 1);
      for (int64_t i = 0; i < count; ++i) store_u16(row, i, fp32_to_bf16(x[i]));
      return;
    }
    case TensorType::Q8_0:
      return quantize_blocks<BlockQ8_0, kQK, encode_q8_0>(x, row, block_count(kFn, type, n, kQK));
    case TensorType::Q4_0:
      return quantize_blocks<BlockQ4_0, kQK, encode_q4_0>(x, row, block_count(kFn, type, n, kQK));
    case TensorType::Q4_1:
      return quantize_blocks<BlockQ4_1, kQK, encode_q4_1>(x, row, block_count(kFn, type, n, kQK));
    case TensorType::Q5_0:
      return quantize_blocks<BlockQ5_0, kQK, encode_q5_0>(x, row, block_count(kFn, type, n, kQK));
    case TensorType::Q5_1:
      return quantize_blocks<BlockQ5_1, kQK, encode_q5_1>(x, row, block_count(kFn, type, n, kQK));
    case TensorType::IQ4_NL:
      return quantize_blocks<BlockIQ4_NL, kQK, encode_iq4_nl>(x, row,
                                                              block_count(kFn, type, n, kQK));
    case TensorType::IQ4_XS:
      return quantize_blocks<BlockIQ4_XS, kQKK, encode_iq4_xs>(x, row,
                                                               block_count(kFn, type, n, kQKK));
    case TensorType::Q3_K:
      return quantize_blocks<BlockQ3_K, kQKK, encode_q3_k>(x, row, block_count(kFn, type, n, kQKK));
    case TensorType::Q2_K:
      return quantize_blocks<BlockQ2_K, kQKK, encode_q2_k>(x, row, block_count(kFn, type, n, kQKK));
    case TensorType::Q4_K:
      return quantize_blocks<BlockQ4_K, kQKK, encode_q4_k>(x, row, block_count(kFn, type, n, kQKK));
    case TensorType::Q5_K:
      return quantize_blocks<BlockQ5_K, kQKK, encode_q5_k>(x, row, block_count(kFn, type, n, kQKK));
    case TensorType::Q6_K:
      return quantize_blocks<BlockQ6_K, kQKK, encode_q6_k>(x, row, block_count(kFn, type, n, kQKK));
    default:
      throw_unsupported(kFn, type);
  }
}

}  // namespace reprise::kernels
