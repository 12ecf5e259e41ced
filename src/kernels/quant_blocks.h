// On-disk block layouts of the quantized tensor types reprise computes with (ggml numbering and
// byte order; see kernels/README.md for the element order inside each block).
//
// Blocks sit in mmapped files at arbitrary byte offsets, so every struct holds only 1- and 2-byte
// fields, packs without padding (checked below) and has alignof <= 2. Kernels still copy blocks
// out with memcpy rather than casting pointers into the mapping. fp16 fields are the raw
// little-endian IEEE binary16 bits; decode with fp16_to_fp32 (kernels/quant.h).
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace reprise::kernels {

// Elements per block of the legacy types (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) and IQ4_NL.
inline constexpr int kQK = 32;
// Elements per super-block of the K types (Q4_K, Q5_K, Q6_K).
inline constexpr int kQKK = 256;

// Q8_0: 8.5 bits per weight. y[j] = d * qs[j].
struct BlockQ8_0 {
  uint16_t d;      // fp16 scale
  int8_t qs[kQK];  // signed 8-bit quants
};

// Q4_0: 4.5 bits per weight. For j < 16: y[j] = d * ((qs[j] & 0xF) - 8) and
// y[j + 16] = d * ((qs[j] >> 4) - 8).
struct BlockQ4_0 {
  uint16_t d;           // fp16 scale
  uint8_t qs[kQK / 2];  // two 4-bit quants per byte
};

// Q4_1: 5 bits per weight. Like Q4_0 with an offset instead of the "- 8": for j < 16,
// y[j] = d * (qs[j] & 0xF) + m and y[j + 16] = d * (qs[j] >> 4) + m.
struct BlockQ4_1 {
  uint16_t d;           // fp16 scale
  uint16_t m;           // fp16 offset (the block minimum)
  uint8_t qs[kQK / 2];  // two 4-bit quants per byte, as in Q4_0
};

// Q4_K: 4.5 bits per weight. 8 sub-blocks of 32, each with a 6-bit scale sc and 6-bit min m
// (packed into `scales`, see README); y = (d * sc) * q - (dmin * m), q in [0, 15].
struct BlockQ4_K {
  uint16_t d;            // fp16 super-scale for the sub-block scales
  uint16_t dmin;         // fp16 super-scale for the sub-block mins
  uint8_t scales[12];    // 8 x (6-bit scale, 6-bit min)
  uint8_t qs[kQKK / 2];  // 4-bit quants
};

// Q5_K: 5.5 bits per weight. Like Q4_K with a fifth quant bit from qh: q in [0, 31],
// y = (d * sc) * q - (dmin * m).
struct BlockQ5_K {
  uint16_t d;            // fp16 super-scale for the sub-block scales
  uint16_t dmin;         // fp16 super-scale for the sub-block mins
  uint8_t scales[12];    // 8 x (6-bit scale, 6-bit min), packed as in Q4_K
  uint8_t qh[kQKK / 8];  // bit 4 of each quant
  uint8_t qs[kQKK / 2];  // bits 0..3 of each quant
};

// Q6_K: 6.5625 bits per weight. 16 sub-blocks of 16 with signed 8-bit scales;
// y = (d * scales[k]) * (q - 32), q in [0, 63].
struct BlockQ6_K {
  uint8_t ql[kQKK / 2];      // bits 0..3 of each quant
  uint8_t qh[kQKK / 4];      // bits 4..5 of each quant
  int8_t scales[kQKK / 16];  // per-sub-block scales
  uint16_t d;                // fp16 super-scale
};

static_assert(sizeof(BlockQ8_0) == 34);
static_assert(sizeof(BlockQ4_0) == 18);
static_assert(sizeof(BlockQ4_1) == 20);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(offsetof(BlockQ6_K, d) == 208);
static_assert(alignof(BlockQ8_0) <= 2 && alignof(BlockQ4_0) <= 2 && alignof(BlockQ4_1) <= 2 && alignof(BlockQ4_K) <= 2 &&
              alignof(BlockQ5_K) <= 2 && alignof(BlockQ6_K) <= 2);
static_assert(std::is_trivially_copyable_v<BlockQ8_0> && std::is_trivially_copyable_v<BlockQ4_0> &&
              std::is_trivially_copyable_v<BlockQ4_1> &&
              std::is_trivially_copyable_v<BlockQ4_K> && std::is_trivially_copyable_v<BlockQ5_K> &&
              std::is_trivially_copyable_v<BlockQ6_K>);

}  // namespace reprise::kernels
