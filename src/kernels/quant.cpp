// Portable scalar reference kernels. The dequantizers and quantizers follow ggml's reference C
// code operation for operation (same float expressions, same evaluation order, same rounding
// helpers), because reprise promises bit-identical decodes and llama-quantize-identical encodes;
// keep that in mind before "simplifying" any arithmetic here. See kernels/README.md.
#include "kernels/quant.h"

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

struct ScaleMin {
  uint8_t sc;
  uint8_t m;
};

// Sub-blocks 0..3 keep their 6-bit scale/min in the low bits of bytes k / k+4. Sub-blocks 4..7
// put the low nibbles in byte k+4 (scale low, min high) and borrow the spare top two bits of
// bytes k-4 (scale) and k (min) for their high bits.
ScaleMin unpack_scale_min(const uint8_t* s, int k) {
  if (k < 4) return {static_cast<uint8_t>(s[k] & 63), static_cast<uint8_t>(s[k + 4] & 63)};
  return {static_cast<uint8_t>((s[k + 4] & 0xF) | ((s[k - 4] >> 6) << 4)),
          static_cast<uint8_t>((s[k + 4] >> 4) | ((s[k] >> 6) << 4))};
}

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

void decode(const BlockQ4_K& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  const float dmin = fp16_to_fp32(b.dmin);
  for (int c = 0; c < 4; ++c) {  // 4 chunks of 64: sub-blocks 2c (low nibbles), 2c+1 (high)
    const uint8_t* q = b.qs + 32 * c;
    const ScaleMin lo = unpack_scale_min(b.scales, 2 * c);
    const ScaleMin hi = unpack_scale_min(b.scales, 2 * c + 1);
    const float d_lo = d * lo.sc, m_lo = dmin * lo.m;
    const float d_hi = d * hi.sc, m_hi = dmin * hi.m;
    float* out = y + 64 * c;
    for (int l = 0; l < 32; ++l) out[l] = d_lo * static_cast<float>(q[l] & 0xF) - m_lo;
    for (int l = 0; l < 32; ++l) out[32 + l] = d_hi * static_cast<float>(q[l] >> 4) - m_hi;
  }
}

void decode(const BlockQ5_K& b, float* y) {
  const float d = fp16_to_fp32(b.d);
  const float dmin = fp16_to_fp32(b.dmin);
  for (int c = 0; c < 4; ++c) {
    const uint8_t* q = b.qs + 32 * c;
    const uint8_t bit_lo = static_cast<uint8_t>(1u << (2 * c));
    const uint8_t bit_hi = static_cast<uint8_t>(2u << (2 * c));
    const ScaleMin lo = unpack_scale_min(b.scales, 2 * c);
    const ScaleMin hi = unpack_scale_min(b.scales, 2 * c + 1);
    const float d_lo = d * lo.sc, m_lo = dmin * lo.m;
    const float d_hi = d * hi.sc, m_hi = dmin * hi.m;
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
  float amax = 0.0f;
  float extreme = 0.0f;
  for (int j = 0; j < kQK; ++j) {
    if (amax < std::fabs(x[j])) {
      amax = std::fabs(x[j]);
      extreme = x[j];
    }
  }
  const float d = extreme / -8.0f;
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
  float lo = FLT_MAX;
  float hi = -FLT_MAX;
  for (int j = 0; j < kQK; ++j) {
    if (x[j] < lo) lo = x[j];
    if (x[j] > hi) hi = x[j];
  }
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
// (ggml's make_qkx2_quants with squared error). Tries nstep + 1 grid scalings around the
// min/max one, refitting scale and offset to each candidate quantization, and keeps the best.
// Returns the scale and stores -offset in *neg_offset. The running offset is updated when a
// candidate wins and later candidates are derived from it: that is how ggml does it.
float fit_scale_offset(int n, int nmax, const float* x, const float* w, uint8_t* L,
                       float* neg_offset, uint8_t* L_try, float rmin, float rdelta, int nstep) {
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
    best_err += w[i] * (diff * diff);
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
        err += w[i] * (diff * diff);
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
  float extreme = 0;
  float amax = 0;
  for (int i = 0; i < n; ++i) {
    const float ax = std::fabs(x[i]);
    if (ax > amax) {
      amax = ax;
      extreme = x[i];
    }
  }
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
        fit_scale_offset(32, nmax, xs, weights, L + 32 * j, &mins[j], L_try, rmin, 0.1f, nstep);
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
  for (int j = 0; j < kQKK / 32; ++j) {
    const ScaleMin sm = unpack_scale_min(packed, j);
    const float d = d_all * sm.sc;
    if (d == 0) continue;  // keep the fit's levels; they decode to -offset regardless
    const float dm = dmin_all * sm.m;
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
  float max_scale = 0;  // signed: the sub-block scale of largest magnitude
  float max_abs_scale = 0;
  for (int k = 0; k < kQKK / 16; ++k) {
    scales[k] = fit_symmetric_scale(16, 32, x + 16 * k, L + 16 * k);
    const float a = std::fabs(scales[k]);
    if (a > max_abs_scale) {
      max_abs_scale = a;
      max_scale = scales[k];
    }
  }
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
