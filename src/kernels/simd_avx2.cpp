// AVX2 + FMA + F16C kernels (Intel Haswell and later, AMD Zen and later).
//
// This file is compiled with -mavx2 -mfma -mf16c and only ever called after dispatch.cpp has
// checked the CPU. Everything except the table getter is file-local (see isa_kernels.h).
//
// Decode (matvec) multiplies quantized weights with activations quantized to 8 bits
// (ActQ8_32 / ActQ8_256): products of unsigned 4..6-bit weights and signed 8-bit activations
// are formed with vpmaddubsw, summed with vpmaddwd against the (integer) sub-block scales, and
// turned into float once per block. Prefill (gemm) dequantizes a 16-row panel of weights to F32
// and runs a 6x16 F32 FMA micro-kernel over the tokens for the float types (and for every type
// with REPRISE_PREFILL=f32); Q8_0, Q4_0, Q4_K, Q5_K and Q6_K prefill on 8-bit activations
// (gemm_int_avx2.inc).
#include <cstdint>
#include <cstring>

#include "kernels/isa_kernels.h"
#include "kernels/prefetch.h"
#include "kernels/quant_blocks.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

namespace reprise::kernels {
namespace {

// ggml type ids (format/tensor_type.h is not included here: it defines inline functions).
constexpr uint32_t kF32 = 0, kF16 = 1, kQ4_0 = 2, kQ4_1 = 3, kQ5_0 = 6, kQ5_1 = 7, kQ8_0 = 8,
                   kQ2_K = 10, kQ3_K = 11, kQ4_K = 12, kQ5_K = 13, kQ6_K = 14, kIQ4_NL = 20,
                   kIQ4_XS = 23, kBF16 = 30;

// ---------------------------------------------------------------------------------------------
// Small helpers

inline float hsum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline float hmax(__m256 v) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  s = _mm_max_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline int32_t hsum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

inline float f16_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return _cvtsh_ss(h);
}

inline __m256i loadu256(const void* p) {
  return _mm256_loadu_si256(static_cast<const __m256i*>(p));
}
inline __m128i loadu128(const void* p) {
  return _mm_loadu_si128(static_cast<const __m128i*>(p));
}

// 8 F16 or BF16 values to F32.
inline __m256 load8_f16(const void* p) {
  return _mm256_cvtph_ps(loadu128(p));
}
inline __m256 load8_bf16(const void* p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(loadu128(p)), 16));
}

// Sum over pairs of u8 * s8 products, then over pairs of those, as 8 x i32.
inline __m256i dot_u8s8(__m256i u, __m256i s) {
  return _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1));
}

// The 6-bit quants (0..63) of half h (elements 128h .. 128h + 127) of a Q6_K block, as four
// registers of 32 bytes: q[i] holds elements 128h + 32i .. 128h + 32i + 31 (layout in
// kernels/README.md).
inline void unpack_q6_half(const uint8_t* blk, int h, __m256i* q) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), m3 = _mm256_set1_epi8(3);
  const __m256i mC = _mm256_set1_epi8(0x0C), m30 = _mm256_set1_epi8(0x30);
  const __m256i l0 = loadu256(blk + 64 * h), l1 = loadu256(blk + 64 * h + 32);
  const __m256i hb = loadu256(blk + 128 + 32 * h);
  q[0] = _mm256_or_si256(_mm256_and_si256(l0, m4), _mm256_slli_epi16(_mm256_and_si256(hb, m3), 4));
  q[1] = _mm256_or_si256(_mm256_and_si256(l1, m4), _mm256_slli_epi16(_mm256_and_si256(hb, mC), 2));
  q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l0, 4), m4), _mm256_and_si256(hb, m30));
  q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(l1, 4), m4),
                         _mm256_and_si256(_mm256_srli_epi16(hb, 2), m30));
}

// ---------------------------------------------------------------------------------------------
// Activation quantization

// Rounds 32 floats times `id` to int8 (nearest, ties to even) in element order; adds their sum
// to *sum8 (as 8 partial lanes).
inline __m256i round_pack32(const float* x, __m256 id, __m256i* sum8) {
  const __m256i i0 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x), id));
  const __m256i i1 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 8), id));
  const __m256i i2 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 16), id));
  const __m256i i3 = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + 24), id));
  *sum8 = _mm256_add_epi32(_mm256_add_epi32(i0, i1), _mm256_add_epi32(i2, i3));
  // The two packs interleave 128-bit lanes; the permute restores element order.
  const __m256i p = _mm256_packs_epi16(_mm256_packs_epi32(i0, i1), _mm256_packs_epi32(i2, i3));
  return _mm256_permutevar8x32_epi32(p, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

inline __m256 abs_max8(const float* x, int64_t n) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  __m256 m = _mm256_setzero_ps();
  for (int64_t i = 0; i < n; i += 8)
    m = _mm256_max_ps(m, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
  return m;
}

void quantize_q8_32(const float* x, int64_t n, ActQ8_32* out) {
  for (int64_t b = 0; b < n / 32; ++b, x += 32) {
    const float amax = hmax(abs_max8(x, 32));
    const float d = amax / 127.0f;
    const __m256 id = _mm256_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
    __m256i s;
    const __m256i q = round_pack32(x, id, &s);
    out[b].d = d;
    out[b].sum = hsum_i32(s);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[b].q), q);
  }
}

void quantize_q8_256(const float* x, int64_t n, ActQ8_256* out) {
  for (int64_t b = 0; b < n / 256; ++b, x += 256) {
    const float amax = hmax(abs_max8(x, 256));
    out[b].d = amax / 127.0f;
    const __m256 id = _mm256_set1_ps(amax > 0 ? 127.0f / amax : 0.0f);
    for (int g = 0; g < 8; ++g) {
      __m256i s;
      const __m256i q = round_pack32(x + 32 * g, id, &s);
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(out[b].q + 32 * g), q);
      // s holds sums of elements {i, i+8, i+16, i+24}; the 16-groups need lanes of x[0..16)
      // and x[16..32), so sum the quantized bytes directly instead.
      const __m256i w =
          _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm256_castsi256_si128(q)), _mm256_set1_epi16(1));
      const __m256i w2 = _mm256_madd_epi16(_mm256_cvtepi8_epi16(_mm256_extracti128_si256(q, 1)),
                                           _mm256_set1_epi16(1));
      out[b].bsum[2 * g] = static_cast<int16_t>(hsum_i32(w));
      out[b].bsum[2 * g + 1] = static_cast<int16_t>(hsum_i32(w2));
    }
  }
}

// Pairs of 32-blocks as ActQ8_32x2 (see isa_kernels.h); an odd last block pairs with zeros.
void quantize_q8_32x2(const float* x, int64_t n, ActQ8_32x2* out) {
  const int64_t nb = n / 32;
  for (int64_t b = 0; b < nb; b += 2, x += 64, ++out) {
    ActQ8_32 q[2] = {};
    quantize_q8_32(x, b + 1 < nb ? 64 : 32, q);
    for (int h = 0; h < 2; ++h) {
      std::memcpy(out->lo + 16 * h, q[h].q, 16);
      std::memcpy(out->hi + 16 * h, q[h].q + 16, 16);
      for (int l = 0; l < 4; ++l) {
        out->off[4 * h + l] = l == 0 ? 8 * q[h].sum : 0;
        out->d[4 * h + l] = q[h].d;
      }
    }
  }
}

ActFormat matvec_act(uint32_t type) {
  switch (type) {
    case kQ4_0:
    case kQ4_1:
    case kQ5_0:
    case kQ5_1:
    case kIQ4_NL:
      return ActFormat::Q8_32x2;
    case kQ8_0:
      return ActFormat::Q8_32;
    case kQ2_K:
    case kQ3_K:
    case kIQ4_XS:
    case kQ4_K:
    case kQ5_K:
    case kQ6_K:
      return ActFormat::Q8_256;
    default:
      return ActFormat::F32;
  }
}

void quantize_act(ActFormat f, const float* x, int64_t n, void* out) {
  if (f == ActFormat::Q8_32) quantize_q8_32(x, n, static_cast<ActQ8_32*>(out));
  if (f == ActFormat::Q8_256) quantize_q8_256(x, n, static_cast<ActQ8_256*>(out));
  if (f == ActFormat::Q8_32x2) quantize_q8_32x2(x, n, static_cast<ActQ8_32x2*>(out));
  if (f == ActFormat::F32) std::memcpy(out, x, static_cast<size_t>(n) * sizeof(float));
}

// ---------------------------------------------------------------------------------------------
// Matrix-vector kernels, one weight row at a time (decode is bound by reading the weights, so
// the point is to keep the per-byte instruction count low, not to reuse activations).

float dot_q8_0(const uint8_t* row, const ActQ8_32* a, int64_t nb) {
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  auto step = [&](int64_t b, __m256 acc) {
    const uint8_t* blk = row + 34 * b;
    const __m256i w = loadu256(blk + 2);
    const __m256i x = loadu256(a[b].q);
    // vpmaddubsw wants one unsigned operand: |w| times x with w's sign moved onto x.
    const __m256i p = dot_u8s8(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(p), _mm256_set1_ps(f16_at(blk) * a[b].d), acc);
  };
  int64_t b = 0;
  for (; b + 1 < nb; b += 2) {
    acc0 = step(b, acc0);
    acc1 = step(b + 1, acc1);
  }
  if (b < nb) acc0 = step(b, acc0);
  return hsum(_mm256_add_ps(acc0, acc1));
}

// Two blocks per 256-bit register: their 2 x 16 bytes of nibbles are one load pair, and the
// activations come pre-arranged to match (ActQ8_32x2), so each conversion, scale and FMA serves
// two blocks. One block per register spent ~19 instructions per 18 bytes and capped this kernel
// at ~9.5 GB/s per core, below the memory's pace.
float dot_q4_0(const uint8_t* row, const ActQ8_32x2* a, int64_t nb) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  const __m256i pair_idx = _mm256_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1);
  auto scales = [&](const uint8_t* blk, bool second) {
    uint16_t h0, h1 = 0;
    std::memcpy(&h0, blk, 2);
    if (second) std::memcpy(&h1, blk + 18, 2);
    const __m128 d = _mm_cvtph_ps(_mm_insert_epi16(_mm_cvtsi32_si128(h0), h1, 1));
    return _mm256_permutevar8x32_ps(_mm256_castps128_ps256(d), pair_idx);
  };
  auto step = [&](int64_t p, __m256i w, __m256 acc, bool second) {
    const ActQ8_32x2& x = a[p];
    const __m256i lo = _mm256_and_si256(w, m4);
    const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), m4);
    // |q| <= 15 and |x| <= 127: four products per 16-bit lane stay below 2^15.
    const __m256i s16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, loadu256(x.lo)),
                                         _mm256_maddubs_epi16(hi, loadu256(x.hi)));
    const __m256i s32 = _mm256_sub_epi32(_mm256_madd_epi16(s16, ones), loadu256(x.off));
    const __m256 d = _mm256_mul_ps(scales(row + 36 * p, second), _mm256_loadu_ps(x.d));
    return _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32), d, acc);
  };
  auto pair = [&](int64_t p) {
    const uint8_t* blk = row + 36 * p;
    return _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(blk + 20),
                               reinterpret_cast<const __m128i*>(blk + 2));
  };
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  const int64_t full = nb / 2;
  int64_t p = 0;
  for (; p + 1 < full; p += 2) {
    acc0 = step(p, pair(p), acc0, true);
    acc1 = step(p + 1, pair(p + 1), acc1, true);
  }
  if (p < full) acc0 = step(p, pair(p), acc0, true), ++p;
  if (nb % 2) {
    // A last single block: the high half of the register must not read past the row.
    acc1 = step(p, _mm256_zextsi128_si256(loadu128(row + 36 * p + 2)), acc1, false);
  }
  return hsum(_mm256_add_ps(acc0, acc1));
}

// 32 bits to 32 bytes: byte e is 0xFF where bit e of `bits` is set, else 0.
inline __m256i bits_to_bytes(uint32_t bits) {
  const __m256i spread =
      _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)),
                          _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2,
                                           2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ull));
  return _mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit);
}

// The 16 IQ4 levels (kernels/quant_blocks.h kIq4Levels) in both 128-bit lanes, for vpshufb.
inline __m256i iq4_levels() {
  const __m128i t =
      _mm_setr_epi8(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
  return _mm256_set_m128i(t, t);
}

// 16 bytes of Q4_0-ordered nibbles as 32 bytes in element order (low nibbles, then high).
inline __m256i nibbles32(const uint8_t* qs) {
  const __m128i v = loadu128(qs);
  return _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 4), v), _mm256_set1_epi8(0x0F));
}

// One block of a 32-wide type as its quants in element order and y = d * q + m: unsigned
// quants (Q4_1, Q5_0 with m = -16 d, Q5_1), or for IQ4_NL the signed level values with m = 0.
struct Block32 {
  __m256i q;
  float d, m;
};

template <uint32_t Type>
inline constexpr bool kSignedQuants = Type == kIQ4_NL;

template <uint32_t Type>
inline constexpr int64_t kBlock32Bytes = Type == kQ4_1   ? 20
                                         : Type == kQ5_0 ? 22
                                         : Type == kQ5_1 ? 24
                                                         : 18;

// Adds Q5_0/Q5_1's fifth bits (bit e of the 32-bit word at qh, worth 16) to nibbles q.
inline __m256i with_fifth_bit(__m256i q, const uint8_t* qh) {
  uint32_t bits;
  std::memcpy(&bits, qh, 4);
  return _mm256_or_si256(q, _mm256_and_si256(bits_to_bytes(bits), _mm256_set1_epi8(0x10)));
}

template <uint32_t Type>
inline Block32 load_block32(const uint8_t* blk) {
  static_assert(Type == kQ4_1 || Type == kQ5_0 || Type == kQ5_1 || Type == kIQ4_NL);
  if constexpr (Type == kQ4_1) return {nibbles32(blk + 4), f16_at(blk), f16_at(blk + 2)};
  if constexpr (Type == kQ5_0) {
    const float d = f16_at(blk);
    return {with_fifth_bit(nibbles32(blk + 6), blk + 2), d, -16.0f * d};
  }
  if constexpr (Type == kQ5_1)
    return {with_fifth_bit(nibbles32(blk + 8), blk + 4), f16_at(blk), f16_at(blk + 2)};
  if constexpr (Type == kIQ4_NL)
    return {_mm256_shuffle_epi8(iq4_levels(), nibbles32(blk + 2)), f16_at(blk), 0.0f};
}

// Pairs of 32-blocks against ActQ8_32x2, as dot_q4_0 does for Q4_0 (one block per register ran at
// ~60% of Q4_0's pace): sum_j (d q_j + m) (da a_j) = d da sum_j q_j a_j + m da sum_j a_j, the
// second term from the activation sums in `off` (8 sum per block; Q5_0's m = -16 d is taken off in
// integers). IQ4_NL's signed levels move their sign onto the activations for vpmaddubsw.
template <uint32_t Type>
float dot_pair32(const uint8_t* row, const ActQ8_32x2* a, int64_t nb) {
  constexpr int64_t kB = kBlock32Bytes<Type>;
  constexpr int64_t kQs = Type == kQ4_1 ? 4 : Type == kQ5_0 ? 6 : Type == kQ5_1 ? 8 : 2;
  constexpr bool kFifthBit = Type == kQ5_0 || Type == kQ5_1;
  const __m256i m4 = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  const __m256i idx_d = _mm256_setr_epi32(0, 0, 0, 0, 2, 2, 2, 2);
  const __m256i idx_m = _mm256_setr_epi32(1, 1, 1, 1, 3, 3, 3, 3);
  auto step = [&](int64_t p, bool second, __m256 acc) {
    const uint8_t* blk = row + 2 * kB * p;
    const ActQ8_32x2& x = a[p];
    const __m256i w = second ? _mm256_loadu2_m128i(reinterpret_cast<const __m128i*>(blk + kB + kQs),
                                                   reinterpret_cast<const __m128i*>(blk + kQs))
                             : _mm256_zextsi128_si256(loadu128(blk + kQs));
    __m256i lo = _mm256_and_si256(w, m4), hi = _mm256_and_si256(_mm256_srli_epi16(w, 4), m4);
    if constexpr (kFifthBit) {
      // lo holds elements 0..15 of both blocks, hi elements 16..31: regroup the qh bits alike.
      constexpr int64_t kQh = kQs - 4;
      uint32_t h0, h1 = 0;
      std::memcpy(&h0, blk + kQh, 4);
      if (second) std::memcpy(&h1, blk + kB + kQh, 4);
      const __m256i bit4 = _mm256_set1_epi8(0x10);
      lo = _mm256_or_si256(lo, _mm256_and_si256(bits_to_bytes((h0 & 0xFFFFu) | (h1 << 16)), bit4));
      hi = _mm256_or_si256(hi,
                           _mm256_and_si256(bits_to_bytes((h0 >> 16) | (h1 & 0xFFFF0000u)), bit4));
    }
    __m256i s32;
    if constexpr (kSignedQuants<Type>) {
      // |level| <= 127: one vpmaddubsw pair reaches 32258, so the two halves add as 32-bit.
      lo = _mm256_shuffle_epi8(iq4_levels(), lo);
      hi = _mm256_shuffle_epi8(iq4_levels(), hi);
      s32 = _mm256_add_epi32(
          dot_u8s8(_mm256_sign_epi8(lo, lo), _mm256_sign_epi8(loadu256(x.lo), lo)),
          dot_u8s8(_mm256_sign_epi8(hi, hi), _mm256_sign_epi8(loadu256(x.hi), hi)));
    } else {
      // q <= 31 and |x| <= 127: four products per 16-bit lane stay below 2^15.
      const __m256i s16 = _mm256_add_epi16(_mm256_maddubs_epi16(lo, loadu256(x.lo)),
                                           _mm256_maddubs_epi16(hi, loadu256(x.hi)));
      s32 = _mm256_madd_epi16(s16, ones);
      if constexpr (Type == kQ5_0)
        s32 = _mm256_sub_epi32(s32, _mm256_slli_epi32(loadu256(x.off), 1));
    }
    // Both blocks' leading (d, m) or (d, next bytes) half pairs in one conversion: d0 m0 d1 m1.
    uint32_t w0, w1 = 0;
    std::memcpy(&w0, blk, 4);
    if (second) std::memcpy(&w1, blk + kB, 4);
    const __m256 dm = _mm256_castps128_ps256(
        _mm_cvtph_ps(_mm_setr_epi32(static_cast<int>(w0), static_cast<int>(w1), 0, 0)));
    const __m256 xd = _mm256_loadu_ps(x.d);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(s32),
                          _mm256_mul_ps(_mm256_permutevar8x32_ps(dm, idx_d), xd), acc);
    if constexpr (Type == kQ4_1 || Type == kQ5_1) {
      const __m256 m = _mm256_mul_ps(_mm256_permutevar8x32_ps(dm, idx_m), xd);
      acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(loadu256(x.off)),
                            _mm256_mul_ps(m, _mm256_set1_ps(0.125f)), acc);
    }
    return acc;
  };
  __m256 acc0 = _mm256_setzero_ps(), acc1 = _mm256_setzero_ps();
  const int64_t full = nb / 2;
  int64_t p = 0;
  for (; p + 1 < full; p += 2) {
    acc0 = step(p, true, acc0);
    acc1 = step(p + 1, true, acc1);
  }
  if (p < full) acc0 = step(p, true, acc0), ++p;
  if (nb % 2) acc1 = step(p, false, acc1);  // a last single block: read only its own bytes
  return hsum(_mm256_add_ps(acc0, acc1));
}

// Q3_K's 16 signed sub-block scales as 16-bit lanes (6 bits stored + 32; layout in
// kernels/README.md): low nibbles in bytes 0..7 (s < 8 low, s >= 8 high nibble of byte s - 8),
// high pairs at bits 2 (s / 4) of byte 8 + s % 4. Four scales per 32-bit word at a time.
inline __m256i q3_k_scales(const uint8_t* s) {
  uint32_t w[3];
  std::memcpy(w, s, 12);
  constexpr uint32_t low4 = 0x0F0F0F0F, low2 = 0x03030303;
  const uint32_t v0 = (w[0] & low4) | ((w[2] & low2) << 4);                // s 0..3
  const uint32_t v1 = (w[1] & low4) | (((w[2] >> 2) & low2) << 4);         // s 4..7
  const uint32_t v2 = ((w[0] >> 4) & low4) | (((w[2] >> 4) & low2) << 4);  // s 8..11
  const uint32_t v3 = ((w[1] >> 4) & low4) | (((w[2] >> 6) & low2) << 4);  // s 12..15
  const __m128i u = _mm_setr_epi32(static_cast<int>(v0), static_cast<int>(v1), static_cast<int>(v2),
                                   static_cast<int>(v3));
  return _mm256_cvtepi8_epi16(_mm_sub_epi8(u, _mm_set1_epi8(32)));
}

// A byte-shuffle control that copies 16-bit lane k of each 128-bit half into all its lanes.
inline __m256i word_broadcast(int k) {
  return _mm256_set1_epi16(static_cast<int16_t>((2 * k + 1) << 8 | 2 * k));
}

// For the 32 elements 128h + 32j .. 128h + 32j + 31 of a 16-sub-block type (sub-blocks 8h + 2j
// in the low and 8h + 2j + 1 in the high 128-bit half): their two scales out of `sc16` (16 x i16),
// broadcast within each half, ready for vpmaddwd.
inline __m256i sub_block_scales(__m256i sc16, int h, int j) {
  const __m256i half = h == 0 ? _mm256_permute2x128_si256(sc16, sc16, 0x00)
                              : _mm256_permute2x128_si256(sc16, sc16, 0x11);
  const __m256i pick = _mm256_set_m128i(_mm256_castsi256_si128(word_broadcast(2 * j + 1)),
                                        _mm256_castsi256_si128(word_broadcast(2 * j)));
  return _mm256_shuffle_epi8(half, pick);
}

// IQ4_XS's 6-bit scale of sub-block s, minus 32.
inline int iq4_xs_scale(const uint8_t* blk, int s) {
  uint16_t h;
  std::memcpy(&h, blk + 2, 2);
  return (((blk[4 + s / 2] >> (4 * (s % 2))) & 0xF) | (((h >> (2 * s)) & 3) << 4)) - 32;
}

// The four 32-element rows of one 128-element half of a Q2_K/Q3_K 2-bit plane: element
// 128h + 32j + l is bits 2j..2j+1 of qs[32h + l] (layout in kernels/README.md).
inline __m256i two_bits(__m256i qs, int j) {
  return _mm256_and_si256(_mm256_srli_epi16(qs, 2 * j), _mm256_set1_epi8(3));
}

// Q3_K with unsigned quants 0..7 (low bits | high bit << 2); the "- 4" goes through the
// activation sums: sum_e sc (q - 4) a = sum_e sc q a - 4 sum_s sc_s bsum_s.
float dot_q3_k(const uint8_t* row, const ActQ8_256* a, int64_t nb) {
  __m256 acc = _mm256_setzero_ps();
  const __m256i one = _mm256_set1_epi8(1);
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = row + 110 * b;
    const __m256i sc16 = q3_k_scales(blk + 96);
    const __m256i corr = _mm256_madd_epi16(sc16, loadu256(a[b].bsum));
    const __m256i hm = loadu256(blk);
    __m256i isum = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i qs = loadu256(blk + 32 + 32 * h);
      for (int j = 0; j < 4; ++j) {
        const __m256i high = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + j), one);
        const __m256i q = _mm256_or_si256(two_bits(qs, j), _mm256_slli_epi16(high, 2));
        const __m256i p = _mm256_maddubs_epi16(q, loadu256(a[b].q + 128 * h + 32 * j));
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, sub_block_scales(sc16, h, j)));
      }
    }
    isum = _mm256_sub_epi32(isum, _mm256_slli_epi32(corr, 2));
    acc =
        _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(f16_at(blk + 108) * a[b].d), acc);
  }
  return hsum(acc);
}

float dot_q2_k(const uint8_t* row, const ActQ8_256* a, int64_t nb) {
  __m256 acc = _mm256_setzero_ps(), mins = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = row + 84 * b;
    // Scales (low nibbles) and mins (high nibbles) widened to 16 bits.
    const __m256i sm = _mm256_cvtepu8_epi16(loadu128(blk));
    const __m256i sc16 = _mm256_and_si256(sm, _mm256_set1_epi16(0xF));
    const __m256i msum = _mm256_madd_epi16(_mm256_srli_epi16(sm, 4), loadu256(a[b].bsum));
    __m256i isum = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      const __m256i qs = loadu256(blk + 16 + 32 * h);
      for (int j = 0; j < 4; ++j) {
        const __m256i p =
            _mm256_maddubs_epi16(two_bits(qs, j), loadu256(a[b].q + 128 * h + 32 * j));
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, sub_block_scales(sc16, h, j)));
      }
    }
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(f16_at(blk + 80) * a[b].d), acc);
    mins =
        _mm256_fmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_set1_ps(f16_at(blk + 82) * a[b].d), mins);
  }
  return hsum(_mm256_sub_ps(acc, mins));
}

// IQ4_XS: per sub-block of 32, signed levels times activations (the sign moved onto the
// activations for vpmaddubsw), weighted by the signed 6-bit sub-block scale.
float dot_iq4_xs(const uint8_t* row, const ActQ8_256* a, int64_t nb) {
  const __m256i levels = iq4_levels();
  __m256 acc = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = row + 136 * b;
    __m256i isum = _mm256_setzero_si256();
    for (int s = 0; s < 8; ++s) {
      const __m256i w = _mm256_shuffle_epi8(levels, nibbles32(blk + 8 + 16 * s));
      const __m256i x = loadu256(a[b].q + 32 * s);
      const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(w, w), _mm256_sign_epi8(x, w));
      // |p| <= 32258 per lane and |scale| <= 32: the 32-bit pair sums cannot overflow.
      const __m256i sc = _mm256_set1_epi16(static_cast<int16_t>(iq4_xs_scale(blk, s)));
      isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, sc));
    }
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(f16_at(blk) * a[b].d), acc);
  }
  return hsum(acc);
}

// The sub-block scales and mins of a Q4_K/Q5_K super-block as 8 bytes each (the values of
// unpack_k_scales, four at a time in 32-bit words).
struct KScales {
  uint64_t sc, m;
};
inline KScales k_scales_packed(const uint8_t* s) {
  uint32_t w0, w1, w2;
  std::memcpy(&w0, s, 4);
  std::memcpy(&w1, s + 4, 4);
  std::memcpy(&w2, s + 8, 4);
  constexpr uint32_t low6 = 0x3F3F3F3F, low4 = 0x0F0F0F0F, bits45 = 0x30303030;
  const uint32_t sc_hi = (w2 & low4) | ((w0 >> 2) & bits45);
  const uint32_t m_hi = ((w2 >> 4) & low4) | ((w1 >> 2) & bits45);
  return {(w0 & low6) | uint64_t{sc_hi} << 32, (w1 & low6) | uint64_t{m_hi} << 32};
}

// Q4_K and Q5_K (FifthBit) share everything but the fifth bit. The scales are widened to 16-bit
// lanes once per super-block and picked per sub-block with a byte shuffle, and the mins meet the
// activation sums in one vpmaddwd: scalar loops over the 8 scales and mins used to cost as much
// as the 256 products themselves.
template <bool FifthBit>
float dot_q45_k(const uint8_t* row, const ActQ8_256* a, int64_t nb) {
  constexpr int64_t kBlockBytes = FifthBit ? 176 : 144, kQs = FifthBit ? 48 : 16;
  const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1), two = _mm256_set1_epi8(2);
  const __m128i dup_bytes = _mm_setr_epi8(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
  __m256 acc = _mm256_setzero_ps(), mins = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = row + kBlockBytes * b;
    const KScales ks = k_scales_packed(blk + 4);
    const __m128i sc = _mm_cvtepu8_epi16(_mm_cvtsi64_si128(static_cast<int64_t>(ks.sc)));
    const __m256i sc2 = _mm256_set_m128i(sc, sc);
    // m[s] twice, against bsum[2s] and bsum[2s + 1].
    const __m256i m16 = _mm256_cvtepu8_epi16(
        _mm_shuffle_epi8(_mm_cvtsi64_si128(static_cast<int64_t>(ks.m)), dup_bytes));
    const __m256i msum = _mm256_madd_epi16(m16, loadu256(a[b].bsum));
    __m256i hb = FifthBit ? loadu256(blk + 16) : __m256i{};  // bit 2c of byte l: element 64c + l
    __m256i isum = _mm256_setzero_si256();
    for (int c = 0; c < 4; ++c) {
      const __m256i q = loadu256(blk + kQs + 32 * c);
      __m256i lo = _mm256_and_si256(q, m4), hi = _mm256_and_si256(_mm256_srli_epi16(q, 4), m4);
      if constexpr (FifthBit) {
        lo = _mm256_or_si256(lo, _mm256_slli_epi16(_mm256_and_si256(hb, one), 4));
        hi = _mm256_or_si256(hi, _mm256_slli_epi16(_mm256_and_si256(hb, two), 3));
        hb = _mm256_srli_epi16(hb, 2);
      }
      const __m256i plo = _mm256_maddubs_epi16(lo, loadu256(a[b].q + 64 * c));
      const __m256i phi = _mm256_maddubs_epi16(hi, loadu256(a[b].q + 64 * c + 32));
      isum = _mm256_add_epi32(
          isum, _mm256_madd_epi16(plo, _mm256_shuffle_epi8(sc2, word_broadcast(2 * c))));
      isum = _mm256_add_epi32(
          isum, _mm256_madd_epi16(phi, _mm256_shuffle_epi8(sc2, word_broadcast(2 * c + 1))));
    }
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), _mm256_set1_ps(f16_at(blk) * a[b].d), acc);
    mins =
        _mm256_fmadd_ps(_mm256_cvtepi32_ps(msum), _mm256_set1_ps(f16_at(blk + 2) * a[b].d), mins);
  }
  return hsum(_mm256_sub_ps(acc, mins));
}

// Q6_K quants are unsigned 0..63 here; the "- 32" is applied through the activation sums. The 16
// int8 scales are widened once per super-block; each 32-byte step takes scale k in its low half
// and k + 1 in its high half with one byte shuffle.
float dot_q6_k(const uint8_t* row, const ActQ8_256* a, int64_t nb) {
  __m256 acc = _mm256_setzero_ps(), offset = _mm256_setzero_ps();
  for (int64_t b = 0; b < nb; ++b) {
    const uint8_t* blk = row + 210 * b;
    const __m256i sc = _mm256_cvtepi8_epi16(loadu128(blk + 192));
    const __m256i corr = _mm256_madd_epi16(sc, loadu256(a[b].bsum));
    __m256i isum = _mm256_setzero_si256();
    for (int h = 0; h < 2; ++h) {
      // Both halves hold scales 8h .. 8h + 7.
      const __m256i sch = h == 0 ? _mm256_permute2x128_si256(sc, sc, 0x00)
                                 : _mm256_permute2x128_si256(sc, sc, 0x11);
      __m256i q[4];
      unpack_q6_half(blk, h, q);
      for (int i = 0; i < 4; ++i) {
        // Sub-blocks 8h + 2i (bytes 0..15) and 8h + 2i + 1 (bytes 16..31).
        const __m256i pick = _mm256_set_m128i(_mm256_castsi256_si128(word_broadcast(2 * i + 1)),
                                              _mm256_castsi256_si128(word_broadcast(2 * i)));
        const __m256i p = _mm256_maddubs_epi16(q[i], loadu256(a[b].q + 128 * h + 32 * i));
        isum = _mm256_add_epi32(isum, _mm256_madd_epi16(p, _mm256_shuffle_epi8(sch, pick)));
      }
    }
    const __m256 d = _mm256_set1_ps(f16_at(blk + 208) * a[b].d);
    acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(isum), d, acc);
    offset = _mm256_fmadd_ps(_mm256_cvtepi32_ps(corr), d, offset);
  }
  return hsum(_mm256_fnmadd_ps(_mm256_set1_ps(32.0f), offset, acc));
}

// F32 / F16 / BF16 weights with F32 activations.
template <uint32_t Type>
inline __m256 load8_w(const uint8_t* row, int64_t c) {
  if constexpr (Type == kF32) return _mm256_loadu_ps(reinterpret_cast<const float*>(row) + c);
  if constexpr (Type == kF16) return load8_f16(row + 2 * c);
  if constexpr (Type == kBF16) return load8_bf16(row + 2 * c);
}

template <uint32_t Type>
inline float scalar_w(const uint8_t* row, int64_t c) {
  if constexpr (Type == kF32) {
    float v;
    std::memcpy(&v, row + 4 * c, 4);
    return v;
  }
  uint16_t h;
  std::memcpy(&h, row + 2 * c, 2);
  if constexpr (Type == kF16) return _cvtsh_ss(h);
  uint32_t u = static_cast<uint32_t>(h) << 16;
  float v;
  std::memcpy(&v, &u, 4);
  return v;
}

template <uint32_t Type>
float dot_float(const uint8_t* row, const float* x, int64_t n) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  int64_t c = 0;
  for (; c + 32 <= n; c += 32) {
    a0 = _mm256_fmadd_ps(load8_w<Type>(row, c), _mm256_loadu_ps(x + c), a0);
    a1 = _mm256_fmadd_ps(load8_w<Type>(row, c + 8), _mm256_loadu_ps(x + c + 8), a1);
    a2 = _mm256_fmadd_ps(load8_w<Type>(row, c + 16), _mm256_loadu_ps(x + c + 16), a2);
    a3 = _mm256_fmadd_ps(load8_w<Type>(row, c + 24), _mm256_loadu_ps(x + c + 24), a3);
  }
  for (; c + 8 <= n; c += 8)
    a0 = _mm256_fmadd_ps(load8_w<Type>(row, c), _mm256_loadu_ps(x + c), a0);
  float s = hsum(_mm256_add_ps(_mm256_add_ps(a0, a1), _mm256_add_ps(a2, a3)));
  for (; c < n; ++c) s += scalar_w<Type>(row, c) * x[c];
  return s;
}

void matvec(uint32_t type, const void* w, uint64_t stride, int64_t rows, int64_t cols,
            const void* act, float* y) {
  const auto* base = static_cast<const uint8_t*>(w);
  const auto* a32 = static_cast<const ActQ8_32*>(act);
  const auto* a256 = static_cast<const ActQ8_256*>(act);
  const auto* a64 = static_cast<const ActQ8_32x2*>(act);
  const auto* xf = static_cast<const float*>(act);
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* row = base + r * stride;
    prefetch_ahead(row, stride);
    switch (type) {
      case kF32:
        y[r] = dot_float<kF32>(row, xf, cols);
        break;
      case kF16:
        y[r] = dot_float<kF16>(row, xf, cols);
        break;
      case kBF16:
        y[r] = dot_float<kBF16>(row, xf, cols);
        break;
      case kQ8_0:
        y[r] = dot_q8_0(row, a32, cols / 32);
        break;
      case kQ4_0:
        y[r] = dot_q4_0(row, a64, cols / 32);
        break;
      case kQ4_1:
        y[r] = dot_pair32<kQ4_1>(row, a64, cols / 32);
        break;
      case kQ5_0:
        y[r] = dot_pair32<kQ5_0>(row, a64, cols / 32);
        break;
      case kQ5_1:
        y[r] = dot_pair32<kQ5_1>(row, a64, cols / 32);
        break;
      case kIQ4_NL:
        y[r] = dot_pair32<kIQ4_NL>(row, a64, cols / 32);
        break;
      case kIQ4_XS:
        y[r] = dot_iq4_xs(row, a256, cols / 256);
        break;
      case kQ3_K:
        y[r] = dot_q3_k(row, a256, cols / 256);
        break;
      case kQ2_K:
        y[r] = dot_q2_k(row, a256, cols / 256);
        break;
      case kQ4_K:
        y[r] = dot_q45_k<false>(row, a256, cols / 256);
        break;
      case kQ5_K:
        y[r] = dot_q45_k<true>(row, a256, cols / 256);
        break;
      case kQ6_K:
        y[r] = dot_q6_k(row, a256, cols / 256);
        break;
      default:
        y[r] = 0;
        break;  // ops.cpp only sends computable types
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Dequantization to F32 (prefill packs weights with these). n is a multiple of the block size.

void dequant_q8_0(const uint8_t* p, float* y, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b, p += 34, y += 32) {
    const __m256 d = _mm256_set1_ps(f16_at(p));
    for (int i = 0; i < 4; ++i) {
      const __m256i q =
          _mm256_cvtepi8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(p + 2 + 8 * i)));
      _mm256_storeu_ps(y + 8 * i, _mm256_mul_ps(_mm256_cvtepi32_ps(q), d));
    }
  }
}

// Stores 32 bytes of small unsigned ints as (float(q) * d - m) to y[0..32), with (d0, m0) for
// elements 0..15 and (d1, m1) for 16..31.
inline void store_u8x32(__m256i q, __m256 d0, __m256 m0, __m256 d1, __m256 m1, float* y) {
  const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
  const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
  for (int i = 0; i < 4; ++i) {
    const __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(parts[i]));
    _mm256_storeu_ps(y + 8 * i, _mm256_fmsub_ps(f, i < 2 ? d0 : d1, i < 2 ? m0 : m1));
  }
}
inline void store_u8x32(__m256i q, __m256 d, __m256 m, float* y) {
  store_u8x32(q, d, m, d, m, y);
}

// Stores 32 signed bytes as float(q) * d to y[0..32).
inline void store_s8x32(__m256i q, __m256 d, float* y) {
  const __m128i lo = _mm256_castsi256_si128(q), hi = _mm256_extracti128_si256(q, 1);
  const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
  for (int i = 0; i < 4; ++i)
    _mm256_storeu_ps(y + 8 * i,
                     _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[i])), d));
}

void dequant_q4_0(const uint8_t* p, float* y, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b, p += 18, y += 32) {
    const float d = f16_at(p);
    store_u8x32(nibbles32(p + 2), _mm256_set1_ps(d), _mm256_set1_ps(8.0f * d), y);
  }
}

template <uint32_t Type>
void dequant_block32(const uint8_t* p, float* y, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b, p += kBlock32Bytes<Type>, y += 32) {
    const Block32 w = load_block32<Type>(p);
    if constexpr (kSignedQuants<Type>)
      store_s8x32(w.q, _mm256_set1_ps(w.d), y);
    else
      store_u8x32(w.q, _mm256_set1_ps(w.d), _mm256_set1_ps(-w.m), y);
  }
}

void dequant_iq4_xs(const uint8_t* p, float* y, int64_t n) {
  const __m256i levels = iq4_levels();
  for (int64_t b = 0; b < n / 256; ++b, p += 136, y += 256) {
    const float d = f16_at(p);
    for (int s = 0; s < 8; ++s) {
      const __m256i w = _mm256_shuffle_epi8(levels, nibbles32(p + 8 + 16 * s));
      store_s8x32(w, _mm256_set1_ps(d * static_cast<float>(iq4_xs_scale(p, s))), y + 32 * s);
    }
  }
}

// Q3_K as unsigned 0..7 times d * sc minus 4 d * sc; Q2_K as q * d * sc - dmin * m.
void dequant_q3_k(const uint8_t* p, float* y, int64_t n) {
  const __m256i one = _mm256_set1_epi8(1);
  for (int64_t b = 0; b < n / 256; ++b, p += 110, y += 256) {
    const float d = f16_at(p + 108);
    alignas(32) int16_t sc[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(sc), q3_k_scales(p + 96));
    const __m256i hm = loadu256(p);
    for (int h = 0; h < 2; ++h) {
      const __m256i qs = loadu256(p + 32 + 32 * h);
      for (int j = 0; j < 4; ++j) {
        const __m256i high = _mm256_and_si256(_mm256_srli_epi16(hm, 4 * h + j), one);
        const __m256i q = _mm256_or_si256(two_bits(qs, j), _mm256_slli_epi16(high, 2));
        const int s = 8 * h + 2 * j;
        const float d0 = d * static_cast<float>(sc[s]), d1 = d * static_cast<float>(sc[s + 1]);
        store_u8x32(q, _mm256_set1_ps(d0), _mm256_set1_ps(4.0f * d0), _mm256_set1_ps(d1),
                    _mm256_set1_ps(4.0f * d1), y + 128 * h + 32 * j);
      }
    }
  }
}

void dequant_q2_k(const uint8_t* p, float* y, int64_t n) {
  for (int64_t b = 0; b < n / 256; ++b, p += 84, y += 256) {
    const float d = f16_at(p + 80), dmin = f16_at(p + 82);
    for (int h = 0; h < 2; ++h) {
      const __m256i qs = loadu256(p + 16 + 32 * h);
      for (int j = 0; j < 4; ++j) {
        const int s = 8 * h + 2 * j;
        store_u8x32(two_bits(qs, j), _mm256_set1_ps(d * static_cast<float>(p[s] & 0xF)),
                    _mm256_set1_ps(dmin * static_cast<float>(p[s] >> 4)),
                    _mm256_set1_ps(d * static_cast<float>(p[s + 1] & 0xF)),
                    _mm256_set1_ps(dmin * static_cast<float>(p[s + 1] >> 4)), y + 128 * h + 32 * j);
      }
    }
  }
}

void dequant_q4_k(const uint8_t* p, float* y, int64_t n) {
  const __m256i m4 = _mm256_set1_epi8(0x0F);
  for (int64_t b = 0; b < n / 256; ++b, p += 144, y += 256) {
    const float d = f16_at(p), dmin = f16_at(p + 2);
    uint8_t sc[8], m[8];
    unpack_k_scales(p + 4, sc, m);
    for (int c = 0; c < 4; ++c) {
      const __m256i q = loadu256(p + 16 + 32 * c);
      store_u8x32(_mm256_and_si256(q, m4), _mm256_set1_ps(d * sc[2 * c]),
                  _mm256_set1_ps(dmin * m[2 * c]), y + 64 * c);
      store_u8x32(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4), _mm256_set1_ps(d * sc[2 * c + 1]),
                  _mm256_set1_ps(dmin * m[2 * c + 1]), y + 64 * c + 32);
    }
  }
}

void dequant_q5_k(const uint8_t* p, float* y, int64_t n) {
  const __m256i m4 = _mm256_set1_epi8(0x0F), one = _mm256_set1_epi8(1), two = _mm256_set1_epi8(2);
  for (int64_t b = 0; b < n / 256; ++b, p += 176, y += 256) {
    const float d = f16_at(p), dmin = f16_at(p + 2);
    uint8_t sc[8], m[8];
    unpack_k_scales(p + 4, sc, m);
    __m256i hb = loadu256(p + 16);
    for (int c = 0; c < 4; ++c) {
      const __m256i q = loadu256(p + 48 + 32 * c);
      const __m256i lo =
          _mm256_or_si256(_mm256_and_si256(q, m4), _mm256_slli_epi16(_mm256_and_si256(hb, one), 4));
      const __m256i hi = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(q, 4), m4),
                                         _mm256_slli_epi16(_mm256_and_si256(hb, two), 3));
      hb = _mm256_srli_epi16(hb, 2);
      store_u8x32(lo, _mm256_set1_ps(d * sc[2 * c]), _mm256_set1_ps(dmin * m[2 * c]), y + 64 * c);
      store_u8x32(hi, _mm256_set1_ps(d * sc[2 * c + 1]), _mm256_set1_ps(dmin * m[2 * c + 1]),
                  y + 64 * c + 32);
    }
  }
}

void dequant_q6_k(const uint8_t* p, float* y, int64_t n) {
  for (int64_t b = 0; b < n / 256; ++b, p += 210, y += 256) {
    const float d = f16_at(p + 208);
    const auto* sc = reinterpret_cast<const int8_t*>(p + 192);
    for (int h = 0; h < 2; ++h) {
      __m256i q[4];
      unpack_q6_half(p, h, q);
      for (int i = 0; i < 4; ++i) {
        const int k = 8 * h + 2 * i;
        float* out = y + 128 * h + 32 * i;
        const __m128i lo = _mm256_castsi256_si128(q[i]), hi = _mm256_extracti128_si256(q[i], 1);
        const __m128i parts[4] = {lo, _mm_srli_si128(lo, 8), hi, _mm_srli_si128(hi, 8)};
        for (int j = 0; j < 4; ++j) {
          const float s = d * sc[k + j / 2];
          const __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(parts[j]));
          _mm256_storeu_ps(out + 8 * j,
                           _mm256_fmsub_ps(f, _mm256_set1_ps(s), _mm256_set1_ps(32.0f * s)));
        }
      }
    }
  }
}

template <uint32_t Type>
void dequant_float(const uint8_t* p, float* y, int64_t n) {
  int64_t c = 0;
  for (; c + 8 <= n; c += 8) _mm256_storeu_ps(y + c, load8_w<Type>(p, c));
  for (; c < n; ++c) y[c] = scalar_w<Type>(p, c);
}

// Dequantizes elements [k0, k0 + n) of a row (k0 a multiple of 256 for block types).
void dequant_range(uint32_t type, const uint8_t* row, int64_t k0, int64_t n, float* y) {
  switch (type) {
    case kF32:
      dequant_float<kF32>(row + 4 * k0, y, n);
      break;
    case kF16:
      dequant_float<kF16>(row + 2 * k0, y, n);
      break;
    case kBF16:
      dequant_float<kBF16>(row + 2 * k0, y, n);
      break;
    case kQ8_0:
      dequant_q8_0(row + k0 / 32 * 34, y, n);
      break;
    case kQ4_0:
      dequant_q4_0(row + k0 / 32 * 18, y, n);
      break;
    case kQ4_1:
      dequant_block32<kQ4_1>(row + k0 / 32 * kBlock32Bytes<kQ4_1>, y, n);
      break;
    case kQ5_0:
      dequant_block32<kQ5_0>(row + k0 / 32 * kBlock32Bytes<kQ5_0>, y, n);
      break;
    case kQ5_1:
      dequant_block32<kQ5_1>(row + k0 / 32 * kBlock32Bytes<kQ5_1>, y, n);
      break;
    case kIQ4_NL:
      dequant_block32<kIQ4_NL>(row + k0 / 32 * kBlock32Bytes<kIQ4_NL>, y, n);
      break;
    case kIQ4_XS:
      dequant_iq4_xs(row + k0 / 256 * 136, y, n);
      break;
    case kQ3_K:
      dequant_q3_k(row + k0 / 256 * 110, y, n);
      break;
    case kQ2_K:
      dequant_q2_k(row + k0 / 256 * 84, y, n);
      break;
    case kQ4_K:
      dequant_q4_k(row + k0 / 256 * 144, y, n);
      break;
    case kQ5_K:
      dequant_q5_k(row + k0 / 256 * 176, y, n);
      break;
    case kQ6_K:
      dequant_q6_k(row + k0 / 256 * 210, y, n);
      break;
    default:
      for (int64_t i = 0; i < n; ++i) y[i] = 0;
  }
}

// ---------------------------------------------------------------------------------------------
// Prefill GEMM: y[t, r] = sum_k W[r, k] x[t, k].
//
// Rows are taken 16 at a time. For each chunk of kKc columns the 16 rows are dequantized and
// transposed into a panel [kc][16] (16 KiB, stays in L1), then every group of 6 tokens runs the
// micro-kernel: 12 accumulators of 8 floats, per k one 16-wide weight load and 6 broadcasts.

constexpr int64_t kKc = 256;  // columns per panel chunk (a multiple of every block size)
constexpr int kNr = 16;       // rows per panel
constexpr int kMr = 6;        // tokens per micro-kernel call

// 8x8 transpose of rows r[0..8) (8 floats each) into columns.
inline void transpose8(__m256* r) {
  const __m256 t0 = _mm256_unpacklo_ps(r[0], r[1]), t1 = _mm256_unpackhi_ps(r[0], r[1]);
  const __m256 t2 = _mm256_unpacklo_ps(r[2], r[3]), t3 = _mm256_unpackhi_ps(r[2], r[3]);
  const __m256 t4 = _mm256_unpacklo_ps(r[4], r[5]), t5 = _mm256_unpackhi_ps(r[4], r[5]);
  const __m256 t6 = _mm256_unpacklo_ps(r[6], r[7]), t7 = _mm256_unpackhi_ps(r[6], r[7]);
  const __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
  const __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
  const __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
  const __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
  r[0] = _mm256_permute2f128_ps(u0, u4, 0x20);
  r[1] = _mm256_permute2f128_ps(u1, u5, 0x20);
  r[2] = _mm256_permute2f128_ps(u2, u6, 0x20);
  r[3] = _mm256_permute2f128_ps(u3, u7, 0x20);
  r[4] = _mm256_permute2f128_ps(u0, u4, 0x31);
  r[5] = _mm256_permute2f128_ps(u1, u5, 0x31);
  r[6] = _mm256_permute2f128_ps(u2, u6, 0x31);
  r[7] = _mm256_permute2f128_ps(u3, u7, 0x31);
}

// tmp: [16][kc] row-major  ->  panel: [kc][16].
void transpose_panel(const float* tmp, int64_t kc, float* panel) {
  int64_t k = 0;
  for (; k + 8 <= kc; k += 8) {
    for (int half = 0; half < 2; ++half) {
      __m256 r[8];
      for (int i = 0; i < 8; ++i) r[i] = _mm256_loadu_ps(tmp + (8 * half + i) * kc + k);
      transpose8(r);
      for (int i = 0; i < 8; ++i) _mm256_storeu_ps(panel + (k + i) * kNr + 8 * half, r[i]);
    }
  }
  for (; k < kc; ++k)
    for (int j = 0; j < kNr; ++j) panel[k * kNr + j] = tmp[j * kc + k];
}

// One 6-token x 16-row tile over kc columns. xr[t] points at token t's activations for this
// chunk (tokens past `mt` repeat a valid row and their results are dropped). The 12 accumulators
// are named variables: with an array, GCC keeps a copy in memory and stores it every iteration.
void micro_kernel(const float* panel, int64_t kc, const float* const* xr, float* y, int64_t ldy,
                  int mt, int nr, bool accumulate) {
  const float *x0 = xr[0], *x1 = xr[1], *x2 = xr[2], *x3 = xr[3], *x4 = xr[4], *x5 = xr[5];
  __m256 c00 = _mm256_setzero_ps(), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00;
  __m256 c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00;
  for (int64_t k = 0; k < kc; ++k) {
    const __m256 w0 = _mm256_loadu_ps(panel + k * kNr), w1 = _mm256_loadu_ps(panel + k * kNr + 8);
    __m256 b = _mm256_broadcast_ss(x0 + k);
    c00 = _mm256_fmadd_ps(w0, b, c00);
    c01 = _mm256_fmadd_ps(w1, b, c01);
    b = _mm256_broadcast_ss(x1 + k);
    c10 = _mm256_fmadd_ps(w0, b, c10);
    c11 = _mm256_fmadd_ps(w1, b, c11);
    b = _mm256_broadcast_ss(x2 + k);
    c20 = _mm256_fmadd_ps(w0, b, c20);
    c21 = _mm256_fmadd_ps(w1, b, c21);
    b = _mm256_broadcast_ss(x3 + k);
    c30 = _mm256_fmadd_ps(w0, b, c30);
    c31 = _mm256_fmadd_ps(w1, b, c31);
    b = _mm256_broadcast_ss(x4 + k);
    c40 = _mm256_fmadd_ps(w0, b, c40);
    c41 = _mm256_fmadd_ps(w1, b, c41);
    b = _mm256_broadcast_ss(x5 + k);
    c50 = _mm256_fmadd_ps(w0, b, c50);
    c51 = _mm256_fmadd_ps(w1, b, c51);
  }
  alignas(32) float buf[kMr * kNr];
  _mm256_store_ps(buf + 0, c00);
  _mm256_store_ps(buf + 8, c01);
  _mm256_store_ps(buf + 16, c10);
  _mm256_store_ps(buf + 24, c11);
  _mm256_store_ps(buf + 32, c20);
  _mm256_store_ps(buf + 40, c21);
  _mm256_store_ps(buf + 48, c30);
  _mm256_store_ps(buf + 56, c31);
  _mm256_store_ps(buf + 64, c40);
  _mm256_store_ps(buf + 72, c41);
  _mm256_store_ps(buf + 80, c50);
  _mm256_store_ps(buf + 88, c51);
  for (int t = 0; t < mt; ++t) {
    float* yt = y + t * ldy;
    const float* bt = buf + t * kNr;
    if (nr == kNr) {
      __m256 a = _mm256_load_ps(bt), b = _mm256_load_ps(bt + 8);
      if (accumulate) {
        a = _mm256_add_ps(a, _mm256_loadu_ps(yt));
        b = _mm256_add_ps(b, _mm256_loadu_ps(yt + 8));
      }
      _mm256_storeu_ps(yt, a);
      _mm256_storeu_ps(yt + 8, b);
    } else {
      for (int j = 0; j < nr; ++j) yt[j] = accumulate ? yt[j] + bt[j] : bt[j];
    }
  }
}

void gemm(uint32_t type, const void* w, uint64_t stride, int64_t rows, int64_t cols, const float* x,
          int64_t T, float* y, int64_t ldy, float* scratch) {
  const auto* base = static_cast<const uint8_t*>(w);
  float* tmp = scratch;                // [16][kKc]
  float* panel = scratch + kNr * kKc;  // [kKc][16]
  for (int64_t r0 = 0; r0 < rows; r0 += kNr) {
    const int nr = static_cast<int>(rows - r0 < kNr ? rows - r0 : kNr);
    for (int64_t k0 = 0; k0 < cols; k0 += kKc) {
      const int64_t kc = cols - k0 < kKc ? cols - k0 : kKc;
      for (int j = 0; j < kNr; ++j) {
        if (j < nr)
          dequant_range(type, base + (r0 + j) * stride, k0, kc, tmp + j * kc);
        else
          for (int64_t i = 0; i < kc; ++i) tmp[j * kc + i] = 0;
      }
      transpose_panel(tmp, kc, panel);
      const bool acc = k0 > 0;
      for (int64_t t = 0; t < T; t += kMr) {
        const int mt = static_cast<int>(T - t < kMr ? T - t : kMr);
        const float* xr[kMr];
        for (int i = 0; i < kMr; ++i) xr[i] = x + (t + (i < mt ? i : mt - 1)) * cols + k0;
        micro_kernel(panel, kc, xr, y + t * ldy + r0, ldy, mt, nr, acc);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Attention helpers

template <KvElem E>
inline __m256 load8_kv(const void* base, int64_t off) {
  if constexpr (E == KvElem::F32) return _mm256_loadu_ps(static_cast<const float*>(base) + off);
  return load8_f16(static_cast<const uint16_t*>(base) + off);
}

template <KvElem E>
inline float kv_at(const void* base, int64_t off) {
  if constexpr (E == KvElem::F32) return static_cast<const float*>(base)[off];
  return _cvtsh_ss(static_cast<const uint16_t*>(base)[off]);
}

// The sums of four 8-lane accumulators, one per lane of the result, all by one tree:
// ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)). Every attention score is reduced through it,
// whichever lane it takes, so a score's bits depend on its query and key alone: the row and the
// tile kernels below agree bit for bit, however the rows of a prefill are grouped.
inline __m128 sum4(__m256 a0, __m256 a1, __m256 a2, __m256 a3) {
  const __m256 h = _mm256_hadd_ps(_mm256_hadd_ps(a0, a1), _mm256_hadd_ps(a2, a3));
  return _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
}

// Four scores from their accumulators (query rows q[0..4), keys at k + kj[0..4) elements): the
// tree sum, then the head_dim % 8 tail as a rounded product and sum per element, then the scale.
template <KvElem E>
inline __m128 finish4(__m256 a0, __m256 a1, __m256 a2, __m256 a3, const float* const q[4],
                      const void* k, const int64_t kj[4], int64_t hd8, int64_t hd, float scale) {
  __m128 s = sum4(a0, a1, a2, a3);
  for (int64_t i = hd8; i < hd; ++i) {
    const __m128 qv = _mm_setr_ps(q[0][i], q[1][i], q[2][i], q[3][i]);
    const __m128 kv = _mm_setr_ps(kv_at<E>(k, kj[0] + i), kv_at<E>(k, kj[1] + i),
                                  kv_at<E>(k, kj[2] + i), kv_at<E>(k, kj[3] + i));
    s = _mm_add_ps(s, _mm_mul_ps(qv, kv));
  }
  return _mm_mul_ps(s, _mm_set1_ps(scale));
}

// Four keys per step; the last step repeats the last key and keeps only its valid lanes.
template <KvElem E>
void scores_impl(const float* q, const void* k, int64_t stride, int64_t n, int64_t hd, float scale,
                 float* scores) {
  const int64_t hd8 = hd / 8 * 8;
  const float* const qs[4] = {q, q, q, q};
  for (int64_t j = 0; j < n; j += 4) {
    int64_t kj[4];
    for (int c = 0; c < 4; ++c) kj[c] = (j + c < n ? j + c : n - 1) * stride;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t i = 0; i < hd8; i += 8) {
      const __m256 qv = _mm256_loadu_ps(q + i);
      a0 = _mm256_fmadd_ps(qv, load8_kv<E>(k, kj[0] + i), a0);
      a1 = _mm256_fmadd_ps(qv, load8_kv<E>(k, kj[1] + i), a1);
      a2 = _mm256_fmadd_ps(qv, load8_kv<E>(k, kj[2] + i), a2);
      a3 = _mm256_fmadd_ps(qv, load8_kv<E>(k, kj[3] + i), a3);
    }
    const __m128 s = finish4<E>(a0, a1, a2, a3, qs, k, kj, hd8, hd, scale);
    if (j + 4 <= n) {
      _mm_storeu_ps(scores + j, s);
    } else {
      alignas(16) float buf[4];
      _mm_store_ps(buf, s);
      for (int64_t c = 0; c < n - j; ++c) scores[j + c] = buf[c];
    }
  }
}

void attn_scores(const float* q, const void* k, KvElem elem, int64_t stride, int64_t n, int64_t hd,
                 float scale, float* scores) {
  if (elem == KvElem::F16)
    scores_impl<KvElem::F16>(q, k, stride, n, hd, scale, scores);
  else
    scores_impl<KvElem::F32>(q, k, stride, n, hd, scale, scores);
}

// A tile of queries: 4 rows x 2 keys per step (each key loaded, and converted from F16, once
// for 4 rows), over blocks of 64 keys that stay in L1 while every row of the tile passes them.
// Rows and keys past the ends repeat the last one and are not stored.
template <KvElem E>
void scores_tile_impl(const float* q, int64_t ldq, int64_t nq, const void* k, int64_t stride,
                      int64_t n, int64_t hd, float scale, float* s, int64_t lds) {
  const int64_t hd8 = hd / 8 * 8;
  constexpr int64_t kKeyBlock = 64;
  for (int64_t kb = 0; kb < n; kb += kKeyBlock) {
    const int64_t kend = kb + kKeyBlock < n ? kb + kKeyBlock : n;
    for (int64_t r0 = 0; r0 < nq; r0 += 4) {
      const float* qr[4];
      for (int r = 0; r < 4; ++r) qr[r] = q + (r0 + r < nq ? r0 + r : nq - 1) * ldq;
      for (int64_t j = kb; j < kend; j += 2) {
        const int64_t k0 = j * stride, k1 = (j + 1 < kend ? j + 1 : j) * stride;
        __m256 a00 = _mm256_setzero_ps(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00,
               a30 = a00, a31 = a00;
        for (int64_t i = 0; i < hd8; i += 8) {
          const __m256 x0 = load8_kv<E>(k, k0 + i), x1 = load8_kv<E>(k, k1 + i);
          __m256 qv = _mm256_loadu_ps(qr[0] + i);
          a00 = _mm256_fmadd_ps(qv, x0, a00);
          a01 = _mm256_fmadd_ps(qv, x1, a01);
          qv = _mm256_loadu_ps(qr[1] + i);
          a10 = _mm256_fmadd_ps(qv, x0, a10);
          a11 = _mm256_fmadd_ps(qv, x1, a11);
          qv = _mm256_loadu_ps(qr[2] + i);
          a20 = _mm256_fmadd_ps(qv, x0, a20);
          a21 = _mm256_fmadd_ps(qv, x1, a21);
          qv = _mm256_loadu_ps(qr[3] + i);
          a30 = _mm256_fmadd_ps(qv, x0, a30);
          a31 = _mm256_fmadd_ps(qv, x1, a31);
        }
        // Lanes: (row r, key j), (r, j + 1), (r + 1, j), (r + 1, j + 1).
        const int64_t kj[4] = {k0, k1, k0, k1};
        const float* const qa[4] = {qr[0], qr[0], qr[1], qr[1]};
        const float* const qb[4] = {qr[2], qr[2], qr[3], qr[3]};
        alignas(16) float buf[8];
        _mm_store_ps(buf, finish4<E>(a00, a01, a10, a11, qa, k, kj, hd8, hd, scale));
        _mm_store_ps(buf + 4, finish4<E>(a20, a21, a30, a31, qb, k, kj, hd8, hd, scale));
        const int64_t nk = j + 1 < kend ? 2 : 1;
        for (int64_t r = 0; r < 4 && r0 + r < nq; ++r)
          for (int64_t c = 0; c < nk; ++c) s[(r0 + r) * lds + j + c] = buf[2 * r + c];
      }
    }
  }
}

void attn_scores_tile(const float* q, int64_t ldq, int64_t nq, const void* k, KvElem elem,
                      int64_t stride, int64_t n, int64_t hd, float scale, float* s, int64_t lds) {
  if (elem == KvElem::F16)
    scores_tile_impl<KvElem::F16>(q, ldq, nq, k, stride, n, hd, scale, s, lds);
  else
    scores_tile_impl<KvElem::F32>(q, ldq, nq, k, stride, n, hd, scale, s, lds);
}

// exp(x) for x <= 0 (softmax arguments): 2^n * p(r) with r = x - n ln2 in [-ln2/2, ln2/2], a
// degree-6 polynomial (relative error ~2e-7), and flushing to 0 below -87.
inline __m256 exp_ps(__m256 x) {
  const __m256 lo = _mm256_set1_ps(-87.0f);
  const __m256 under = _mm256_cmp_ps(x, lo, _CMP_LT_OQ);
  x = _mm256_max_ps(x, lo);
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.0f / 720);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 120));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 24));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f / 6));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(0.5f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.0f));
  const __m256i e =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_andnot_ps(under, _mm256_mul_ps(p, _mm256_castsi256_ps(e)));
}

// The largest of x[0..n), -inf for an all -inf row (n >= 1).
inline float row_max(const float* x, int64_t n) {
  __m256 mv = _mm256_set1_ps(-__builtin_inff());
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) mv = _mm256_max_ps(mv, _mm256_loadu_ps(x + j));
  float m = hmax(mv);
  for (; j < n; ++j) m = x[j] > m ? x[j] : m;
  return m;
}

float softmax_exp(float* s, int64_t n) {
  const float m = row_max(s, n);
  const __m256 mb = _mm256_set1_ps(m);
  __m256 sum = _mm256_setzero_ps();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(s + j), mb));
    _mm256_storeu_ps(s + j, e);
    sum = _mm256_add_ps(sum, e);
  }
  float total = hsum(sum);
  if (j < n) {
    alignas(32) float buf[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    const int64_t rest = n - j;
    for (int64_t i = 0; i < rest; ++i) buf[i] = s[j + i] - m;
    _mm256_store_ps(buf, exp_ps(_mm256_load_ps(buf)));
    for (int64_t i = 0; i < rest; ++i) {
      s[j + i] = buf[i];
      total += buf[i];
    }
  }
  return total;
}

// exp in float (the same polynomial as the softmax), summed in double: a vocabulary row has
// ~10^5 terms, too many for a float sum to keep 1e-7 of relative accuracy.
void exp_sum(const float* x, int64_t n, float* max, double* sum) {
  const float m = row_max(x, n);
  const __m256 mb = _mm256_set1_ps(m);
  __m256d lo = _mm256_setzero_pd(), hi = _mm256_setzero_pd();
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 e = exp_ps(_mm256_sub_ps(_mm256_loadu_ps(x + j), mb));
    lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  }
  if (j < n) {
    // The tail is padded with -inf, whose exp is 0 against any finite maximum (a finite pad
    // would count as exp(0) = 1 in a row whose own maximum is as low).
    const float ninf = -__builtin_inff();
    alignas(32) float buf[8] = {ninf, ninf, ninf, ninf, ninf, ninf, ninf, ninf};
    for (int64_t i = 0; i < n - j; ++i) buf[i] = x[j + i];
    const __m256 e = exp_ps(_mm256_sub_ps(_mm256_load_ps(buf), mb));
    lo = _mm256_add_pd(lo, _mm256_cvtps_pd(_mm256_castps256_ps128(e)));
    hi = _mm256_add_pd(hi, _mm256_cvtps_pd(_mm256_extractf128_ps(e, 1)));
  }
  alignas(32) double parts[4];
  _mm256_store_pd(parts, _mm256_add_pd(lo, hi));
  *max = m;
  *sum = (parts[0] + parts[1]) + (parts[2] + parts[3]);
}

// acc + p * v with one rounding, for the head_dim % 8 tail (the vector lanes' arithmetic).
inline float fma1(float p, float v, float acc) {
  return _mm_cvtss_f32(_mm_fmadd_ss(_mm_set_ss(p), _mm_set_ss(v), _mm_set_ss(acc)));
}

// Every output element is one FMA per key, in key order, from zero: the arithmetic the tile
// kernel below repeats for each of its rows.
template <KvElem E>
void values_impl(const float* p, const void* v, int64_t stride, int64_t n, int64_t hd, float* out) {
  int64_t i0 = 0;
  for (; i0 + 64 <= hd; i0 += 64) {  // 8 accumulators cover 64 dimensions
    __m256 a[8];
    for (auto& x : a) x = _mm256_setzero_ps();
    for (int64_t j = 0; j < n; ++j) {
      const __m256 pj = _mm256_set1_ps(p[j]);
      for (int i = 0; i < 8; ++i)
        a[i] = _mm256_fmadd_ps(pj, load8_kv<E>(v, j * stride + i0 + 8 * i), a[i]);
    }
    for (int i = 0; i < 8; ++i) _mm256_storeu_ps(out + i0 + 8 * i, a[i]);
  }
  for (; i0 + 8 <= hd; i0 += 8) {
    __m256 a = _mm256_setzero_ps();
    for (int64_t j = 0; j < n; ++j)
      a = _mm256_fmadd_ps(_mm256_set1_ps(p[j]), load8_kv<E>(v, j * stride + i0), a);
    _mm256_storeu_ps(out + i0, a);
  }
  for (; i0 < hd; ++i0) {
    float a = 0;
    for (int64_t j = 0; j < n; ++j) a = fma1(p[j], kv_at<E>(v, j * stride + i0), a);
    out[i0] = a;
  }
}

void attn_values(const float* p, const void* v, KvElem elem, int64_t stride, int64_t n, int64_t hd,
                 float* out) {
  if (elem == KvElem::F16)
    values_impl<KvElem::F16>(p, v, stride, n, hd, out);
  else
    values_impl<KvElem::F32>(p, v, stride, n, hd, out);
}

// R rows x W 8-wide columns of outputs (dimensions i0..i0 + 8W) over keys [jb, je), each row
// only over its own keys [begin[r], end[r]): the accumulators are read from and written back to
// `out` (exact), so the key blocks of the caller chain into one FMA sequence per element.
template <KvElem E, int R, int W>
inline void values_step(const float* p, int64_t ldp, const void* v, int64_t stride,
                        const int64_t* begin, const int64_t* end, int64_t jb, int64_t je,
                        int64_t i0, float* out, int64_t ldo) {
  __m256 a[R][W];
  for (int r = 0; r < R; ++r)
    for (int w = 0; w < W; ++w) a[r][w] = _mm256_loadu_ps(out + r * ldo + i0 + 8 * w);
  int64_t lo = begin[0], hi = end[0];  // keys every row of the step takes
  for (int r = 1; r < R; ++r) {
    lo = begin[r] > lo ? begin[r] : lo;
    hi = end[r] < hi ? end[r] : hi;
  }
  for (int64_t j = jb; j < je; ++j) {
    __m256 x[W];
    for (int w = 0; w < W; ++w) x[w] = load8_kv<E>(v, j * stride + i0 + 8 * w);
    const bool all = j >= lo && j < hi;
    for (int r = 0; r < R; ++r) {
      if (!all && (j < begin[r] || j >= end[r])) continue;
      const __m256 pj = _mm256_set1_ps(p[r * ldp + j]);
      for (int w = 0; w < W; ++w) a[r][w] = _mm256_fmadd_ps(pj, x[w], a[r][w]);
    }
  }
  for (int r = 0; r < R; ++r)
    for (int w = 0; w < W; ++w) _mm256_storeu_ps(out + r * ldo + i0 + 8 * w, a[r][w]);
}

template <KvElem E, int R>
void values_rows(const float* p, int64_t ldp, const void* v, int64_t stride, const int64_t* begin,
                 const int64_t* end, int64_t jb, int64_t je, int64_t hd, float* out, int64_t ldo) {
  int64_t i0 = 0;
  for (; i0 + 16 <= hd; i0 += 16)
    values_step<E, R, 2>(p, ldp, v, stride, begin, end, jb, je, i0, out, ldo);
  for (; i0 + 8 <= hd; i0 += 8)
    values_step<E, R, 1>(p, ldp, v, stride, begin, end, jb, je, i0, out, ldo);
  for (; i0 < hd; ++i0)
    for (int r = 0; r < R; ++r)
      for (int64_t j = jb > begin[r] ? jb : begin[r]; j < je && j < end[r]; ++j)
        out[r * ldo + i0] = fma1(p[r * ldp + j], kv_at<E>(v, j * stride + i0), out[r * ldo + i0]);
}

// 4 rows x 16 dimensions per step (8 accumulators; each value loaded once for 4 rows), over
// blocks of 64 keys that stay in L1 while every row of the tile passes them.
template <KvElem E>
void values_tile_impl(const float* p, int64_t ldp, int64_t nq, const int64_t* begin,
                      const int64_t* end, const void* v, int64_t stride, int64_t hd, float* out,
                      int64_t ldo) {
  int64_t jmin = begin[0], jmax = end[0];
  for (int64_t r = 0; r < nq; ++r) {
    jmin = begin[r] < jmin ? begin[r] : jmin;
    jmax = end[r] > jmax ? end[r] : jmax;
    for (int64_t i = 0; i < hd; ++i) out[r * ldo + i] = 0.0f;
  }
  constexpr int64_t kKeyBlock = 64;
  for (int64_t jb = jmin; jb < jmax; jb += kKeyBlock) {
    const int64_t je = jb + kKeyBlock < jmax ? jb + kKeyBlock : jmax;
    int64_t r = 0;
    for (; r + 4 <= nq; r += 4)
      values_rows<E, 4>(p + r * ldp, ldp, v, stride, begin + r, end + r, jb, je, hd, out + r * ldo,
                        ldo);
    if (nq - r == 3)
      values_rows<E, 3>(p + r * ldp, ldp, v, stride, begin + r, end + r, jb, je, hd, out + r * ldo,
                        ldo);
    else if (nq - r == 2)
      values_rows<E, 2>(p + r * ldp, ldp, v, stride, begin + r, end + r, jb, je, hd, out + r * ldo,
                        ldo);
    else if (nq - r == 1)
      values_rows<E, 1>(p + r * ldp, ldp, v, stride, begin + r, end + r, jb, je, hd, out + r * ldo,
                        ldo);
  }
}

void attn_values_tile(const float* p, int64_t ldp, int64_t nq, const int64_t* begin,
                      const int64_t* end, const void* v, KvElem elem, int64_t stride, int64_t hd,
                      float* out, int64_t ldo) {
  if (elem == KvElem::F16)
    values_tile_impl<KvElem::F16>(p, ldp, nq, begin, end, v, stride, hd, out, ldo);
  else
    values_tile_impl<KvElem::F32>(p, ldp, nq, begin, end, v, stride, hd, out, ldo);
}

// silu(g) * u = g * u / (1 + exp(-g)); exp_ps saturates to 0 for large g, giving g * u.
void swiglu(float* g, const float* u, int64_t n) {
  const __m256 one = _mm256_set1_ps(1.0f), sign = _mm256_set1_ps(-0.0f);
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    const __m256 gv = _mm256_loadu_ps(g + i);
    // exp(-g) overflows for g < -88; silu is ~0 there, and exp_ps of -|g| keeps it finite:
    // silu(g) = g * s with s = 1 / (1 + e^-g) = e^g / (1 + e^g) for g < 0.
    const __m256 e = exp_ps(_mm256_or_ps(gv, sign));  // exp(-|g|)
    const __m256 neg = _mm256_cmp_ps(gv, _mm256_setzero_ps(), _CMP_LT_OQ);
    const __m256 s = _mm256_div_ps(_mm256_blendv_ps(one, e, neg), _mm256_add_ps(one, e));
    _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_mul_ps(gv, s), _mm256_loadu_ps(u + i)));
  }
  for (; i < n; ++i) {
    alignas(32) float buf[8] = {g[i] < 0 ? g[i] : -g[i], 0, 0, 0, 0, 0, 0, 0};
    _mm256_store_ps(buf, exp_ps(_mm256_load_ps(buf)));
    const float s = (g[i] < 0 ? buf[0] : 1.0f) / (1.0f + buf[0]);
    g[i] = g[i] * s * u[i];
  }
}

// Integer prefill (vpmaddubsw + vpmaddwd) for Q8_0, Q4_0, Q4_K, Q5_K and Q6_K.
#include "kernels/gemm_int_avx2.inc"

constexpr IsaKernels kAvx2 = {
    matvec_act,
    quantize_act,
    matvec,
    gemm,
    attn_scores,
    softmax_exp,
    attn_values,
    attn_scores_tile,
    attn_values_tile,
    swiglu,
    exp_sum,
    int_prefill::gemm_act_row_bytes,
    int_prefill::gemm_round_act,
    int_prefill::gemm_rounded,
    int_prefill::gemm_panel_bytes,
    int_prefill::gemm_pack_panels,
    int_prefill::gemm_packed,
};

}  // namespace

const IsaKernels* avx2_kernels() {
  return &kAvx2;
}

}  // namespace reprise::kernels

#else  // not built for x86-64 with AVX2 (see CMakeLists.txt): no table

namespace reprise::kernels {
const IsaKernels* avx2_kernels() {
  return nullptr;
}
}  // namespace reprise::kernels

#endif
