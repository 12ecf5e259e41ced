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
// Elements per super-block of the K types (Q2_K .. Q6_K) and IQ4_XS.
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

// Q5_0: 5.5 bits per weight. Element e's quant is the nibble as in Q4_0 plus bit e of the
// little-endian 32-bit word qh as its fifth bit (worth 16): y = d * (q - 16), q in [0, 31].
struct BlockQ5_0 {
  uint16_t d;           // fp16 scale
  uint8_t qh[4];        // fifth bits, bit e for element e
  uint8_t qs[kQK / 2];  // low 4 bits, as in Q4_0
};

// Q5_1: 6 bits per weight. Q5_0's quants with Q4_1's offset: y = d * q + m, q in [0, 31].
struct BlockQ5_1 {
  uint16_t d;           // fp16 scale
  uint16_t m;           // fp16 offset (the block minimum)
  uint8_t qh[4];        // fifth bits, bit e for element e
  uint8_t qs[kQK / 2];  // low 4 bits, as in Q4_0
};

// The 16 levels of the non-linear 4-bit types (IQ4_NL, IQ4_XS): denser near zero, where
// weights concentrate. Defined by ggml's format; quants index this table.
inline constexpr int8_t kIq4Levels[16] = {-127, -104, -83, -65, -49, -35, -22, -10,
                                          1,    13,   25,  38,  53,  69,  89,  113};

// IQ4_NL: 4.5 bits per weight. Q4_0's nibble order, each nibble an index into kIq4Levels:
// y[j] = d * kIq4Levels[qs[j] & 0xF], y[j + 16] = d * kIq4Levels[qs[j] >> 4].
struct BlockIQ4_NL {
  uint16_t d;           // fp16 scale
  uint8_t qs[kQK / 2];  // two 4-bit level indices per byte
};

// IQ4_XS: 4.25 bits per weight. 8 sub-blocks of 32 laid out as IQ4_NL blocks without their own
// d; sub-block s has the 6-bit scale ls[s] = (low nibble s of scales_l) | (bits 2s..2s+1 of
// scales_h) << 4, and y = (d * (ls[s] - 32)) * kIq4Levels[index].
struct BlockIQ4_XS {
  uint16_t d;                   // fp16 super-scale
  uint16_t scales_h;            // high 2 bits of the 8 sub-block scales
  uint8_t scales_l[kQKK / 64];  // low 4 bits, two sub-blocks per byte (even s in the low nibble)
  uint8_t qs[kQKK / 2];         // 8 x 16 bytes of level indices, Q4_0 order within each sub-block
};

// Q3_K: 3.4375 bits per weight. 16 sub-blocks of 16 with signed 6-bit scales (stored + 32);
// y = (d * (sc - 32)) * (q - 4), q in [0, 7] from two low bits in qs and a high bit in hmask.
struct BlockQ3_K {
  uint8_t hmask[kQKK / 8];  // high bits: element e uses bit e / 32 of hmask[e % 32]
  uint8_t qs[kQKK / 4];     // low 2 bits, four elements per byte (layout in README)
  uint8_t scales[12];       // 16 x 6-bit scales (layout in README)
  uint16_t d;               // fp16 super-scale
};

// Q2_K: 2.625 bits per weight. 16 sub-blocks of 16, each with a 4-bit scale (low nibble) and
// 4-bit min (high nibble) in scales[]; y = (d * sc) * q - (dmin * m), q in [0, 3].
struct BlockQ2_K {
  uint8_t scales[kQKK / 16];  // sc | m << 4 per sub-block
  uint8_t qs[kQKK / 4];       // 2-bit quants, four elements per byte as in Q3_K
  uint16_t d;                 // fp16 super-scale for the scales
  uint16_t dmin;              // fp16 super-scale for the mins
};

// Q4_K: 4.5 bits per weight. 8 sub-blocks of 32, each with a 6-bit scale sc and 6-bit min m
// (packed into `scales`, see README); y = (d * sc) * q - (dmin * m), q in [0, 15].
struct BlockQ4_K {
  uint16_t d;            // fp16 super-scale for the sub-block scales
  uint16_t dmin;         // fp16 super-scale for the sub-block mins
  uint8_t scales[12];    // 8 x (6-bit scale, 6-bit min)
  uint8_t qs[kQKK / 2];  // 4-bit quants
};

// The 8 six-bit scales `sc` and mins `m` packed in a Q4_K/Q5_K `scales[12]` (kernels/README.md).
// `static` on purpose: every per-ISA file compiles its own copy with its own target flags, and
// internal linkage keeps the linker from picking one ISA's copy for all (isa_kernels.h).
static inline void unpack_k_scales(const uint8_t* s, uint8_t* sc, uint8_t* m) {
  for (int k = 0; k < 4; ++k) {
    sc[k] = s[k] & 63;
    m[k] = s[k + 4] & 63;
  }
  for (int k = 4; k < 8; ++k) {
    sc[k] = static_cast<uint8_t>((s[k + 4] & 0xF) | ((s[k - 4] >> 6) << 4));
    m[k] = static_cast<uint8_t>((s[k + 4] >> 4) | ((s[k] >> 6) << 4));
  }
}

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
static_assert(sizeof(BlockQ5_0) == 22);
static_assert(sizeof(BlockQ5_1) == 24);
static_assert(sizeof(BlockIQ4_NL) == 18);
static_assert(sizeof(BlockIQ4_XS) == 136);
static_assert(sizeof(BlockQ3_K) == 110);
static_assert(sizeof(BlockQ2_K) == 84);
static_assert(offsetof(BlockQ3_K, d) == 108);
static_assert(offsetof(BlockQ2_K, d) == 80);
static_assert(sizeof(BlockQ4_K) == 144);
static_assert(sizeof(BlockQ5_K) == 176);
static_assert(sizeof(BlockQ6_K) == 210);
static_assert(offsetof(BlockQ6_K, d) == 208);
static_assert(alignof(BlockQ8_0) <= 2 && alignof(BlockQ4_0) <= 2 && alignof(BlockQ4_1) <= 2 &&
              alignof(BlockQ5_0) <= 2 && alignof(BlockQ5_1) <= 2 && alignof(BlockIQ4_NL) <= 2 &&
              alignof(BlockIQ4_XS) <= 2 && alignof(BlockQ3_K) <= 2 && alignof(BlockQ2_K) <= 2 &&
              alignof(BlockQ4_K) <= 2 && alignof(BlockQ5_K) <= 2 && alignof(BlockQ6_K) <= 2);
static_assert(std::is_trivially_copyable_v<BlockQ8_0> && std::is_trivially_copyable_v<BlockQ4_0> &&
              std::is_trivially_copyable_v<BlockQ4_1> && std::is_trivially_copyable_v<BlockQ5_0> &&
              std::is_trivially_copyable_v<BlockQ5_1> &&
              std::is_trivially_copyable_v<BlockIQ4_NL> &&
              std::is_trivially_copyable_v<BlockIQ4_XS> &&
              std::is_trivially_copyable_v<BlockQ3_K> && std::is_trivially_copyable_v<BlockQ2_K> &&
              std::is_trivially_copyable_v<BlockQ4_K> && std::is_trivially_copyable_v<BlockQ5_K> &&
              std::is_trivially_copyable_v<BlockQ6_K>);

}  // namespace reprise::kernels
