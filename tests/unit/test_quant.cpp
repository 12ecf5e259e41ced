// Tests for the scalar reference kernels in kernels/quant.h. Expected values are worked out by
// hand from the block layouts (see kernels/README.md), never produced by the code under test.
#include "kernels/quant.h"

#include <gtest/gtest.h>

#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "format/tensor_type.h"
#include "kernels/quant_blocks.h"
#include "util/error.h"

namespace reprise::kernels {
namespace {

constexpr uint16_t kHalfOne = 0x3C00;   // 1.0
constexpr uint16_t kHalfHalf = 0x3800;  // 0.5

template <class Block>
std::vector<float> decode_one(TensorType type, const Block& b, int64_t n) {
  std::vector<float> out(static_cast<size_t>(n), std::nanf(""));
  dequantize_row(type, &b, out.data(), n);
  return out;
}

// ---------------------------------------------------------------------------------------------
// fp16 / bf16

uint32_t float_bits(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

float bits_float(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

TEST(QuantFp16, DecodesKnownPatterns) {
  EXPECT_EQ(fp16_to_fp32(0x3C00), 1.0f);
  EXPECT_EQ(fp16_to_fp32(0xC000), -2.0f);
  EXPECT_EQ(fp16_to_fp32(0x3800), 0.5f);
  EXPECT_EQ(fp16_to_fp32(0x7BFF), 65504.0f);
  EXPECT_EQ(fp16_to_fp32(0x0400), std::ldexp(1.0f, -14));     // smallest normal
  EXPECT_EQ(fp16_to_fp32(0x0001), std::ldexp(1.0f, -24));     // smallest subnormal
  EXPECT_EQ(fp16_to_fp32(0x03FF), std::ldexp(1023.0f, -24));  // largest subnormal
  EXPECT_EQ(fp16_to_fp32(0x8001), -std::ldexp(1.0f, -24));
  EXPECT_EQ(fp16_to_fp32(0x3555), 0.333251953125f);  // 1365/4096
  EXPECT_EQ(fp16_to_fp32(0x0000), 0.0f);
  EXPECT_FALSE(std::signbit(fp16_to_fp32(0x0000)));
  EXPECT_TRUE(std::signbit(fp16_to_fp32(0x8000)));
  EXPECT_EQ(fp16_to_fp32(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(fp16_to_fp32(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0x7E00)));
  // A signalling half nan comes back as a quiet float nan with the payload shifted up:
  // 0x7F800000 | quiet bit 0x400000 | (1 << 13).
  EXPECT_EQ(float_bits(fp16_to_fp32(0x7C01)), 0x7FC02000u);
  EXPECT_EQ(float_bits(fp16_to_fp32(0xFE00)), 0xFFC00000u);
  EXPECT_TRUE(std::isnan(fp16_to_fp32(0xFE00)));
}

TEST(QuantFp16, EncodesWithRoundToNearestEven) {
  EXPECT_EQ(fp32_to_fp16(1.0f), 0x3C00);
  EXPECT_EQ(fp32_to_fp16(-2.0f), 0xC000);
  EXPECT_EQ(fp32_to_fp16(65504.0f), 0x7BFF);
  EXPECT_EQ(fp32_to_fp16(0.1f), 0x2E66);  // 0.0999755859375 is the nearest half
  EXPECT_EQ(fp32_to_fp16(0.0f), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-0.0f), 0x8000);
  // Ties between neighbours 2^-10 apart near 1.0.
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11)), 0x3C00);      // tie -> even (down)
  EXPECT_EQ(fp32_to_fp16(1.0f + 3 * std::ldexp(1.0f, -11)), 0x3C02);  // tie -> even (up)
  EXPECT_EQ(fp32_to_fp16(1.0f + std::ldexp(1.0f, -11) + std::ldexp(1.0f, -20)), 0x3C01);
  // Overflow: 65520 is the midpoint between 65504 and 2^16, and ties to the even "inf".
  EXPECT_EQ(fp32_to_fp16(65519.0f), 0x7BFF);
  EXPECT_EQ(fp32_to_fp16(65520.0f), 0x7C00);
  EXPECT_EQ(fp32_to_fp16(1e6f), 0x7C00);
  EXPECT_EQ(fp32_to_fp16(-1e6f), 0xFC00);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::infinity()), 0x7C00);
  EXPECT_EQ(fp32_to_fp16(-std::numeric_limits<float>::infinity()), 0xFC00);
  // Subnormals, in units of 2^-24.
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -24)), 0x0001);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -25)), 0x0000);  // half a unit -> even 0
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.5f, -25)), 0x0001);  // 0.75 unit
  EXPECT_EQ(fp32_to_fp16(std::ldexp(3.0f, -25)), 0x0002);  // 1.5 units -> even 2
  EXPECT_EQ(fp32_to_fp16(std::ldexp(5.0f, -25)), 0x0002);  // 2.5 units -> even 2
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -26)), 0x0000);
  EXPECT_EQ(fp32_to_fp16(-std::ldexp(1.0f, -24)), 0x8001);
  EXPECT_EQ(fp32_to_fp16(std::ldexp(2047.0f, -25)), 0x0400);  // 1023.5 units -> 1024
  EXPECT_EQ(fp32_to_fp16(std::ldexp(1.0f, -14)), 0x0400);
  EXPECT_EQ(fp32_to_fp16(std::numeric_limits<float>::denorm_min()), 0x0000);
  // nan stays nan (exponent all ones, mantissa non-zero), sign kept.
  const uint16_t qnan = fp32_to_fp16(std::numeric_limits<float>::quiet_NaN());
  EXPECT_EQ(qnan & 0x7C00, 0x7C00);
  EXPECT_NE(qnan & 0x03FF, 0);
  EXPECT_EQ(fp32_to_fp16(-std::numeric_limits<float>::quiet_NaN()) & 0x8000, 0x8000);
}

TEST(QuantFp16, EveryHalfRoundTrips) {
  for (uint32_t h = 0; h < 0x10000; ++h) {
    const float f = fp16_to_fp32(static_cast<uint16_t>(h));
    if (std::isnan(f)) {
      EXPECT_TRUE(std::isnan(fp16_to_fp32(fp32_to_fp16(f)))) << h;
    } else {
      ASSERT_EQ(fp32_to_fp16(f), h) << "half bits 0x" << std::hex << h;
    }
  }
}

TEST(QuantBf16, Conversions) {
  EXPECT_EQ(bf16_to_fp32(0x3F80), 1.0f);
  EXPECT_EQ(bf16_to_fp32(0xC000), -2.0f);
  EXPECT_EQ(bf16_to_fp32(0x0001), bits_float(0x00010000));  // subnormal survives
  EXPECT_EQ(bf16_to_fp32(0x7F80), std::numeric_limits<float>::infinity());
  EXPECT_EQ(fp32_to_bf16(1.0f), 0x3F80);
  EXPECT_EQ(fp32_to_bf16(-2.0f), 0xC000);
  EXPECT_EQ(fp32_to_bf16(bits_float(0x3F808000)), 0x3F80);  // tie, 0x3F80 even: down
  EXPECT_EQ(fp32_to_bf16(bits_float(0x3F818000)), 0x3F82);  // tie, 0x3F81 odd: up
  EXPECT_EQ(fp32_to_bf16(bits_float(0x3F808001)), 0x3F81);  // above the tie
  EXPECT_EQ(fp32_to_bf16(bits_float(0x3F807FFF)), 0x3F80);  // below the tie
  EXPECT_EQ(fp32_to_bf16(bits_float(0xBF818000)), 0xBF82);  // sign does not matter
  EXPECT_EQ(fp32_to_bf16(bits_float(0x7F7FFFFF)), 0x7F80);  // FLT_MAX rounds to inf
  EXPECT_EQ(fp32_to_bf16(std::numeric_limits<float>::infinity()), 0x7F80);
  EXPECT_EQ(fp32_to_bf16(-std::numeric_limits<float>::infinity()), 0xFF80);
  EXPECT_EQ(fp32_to_bf16(bits_float(0x00010000)), 0x0001);  // subnormals are not flushed
  EXPECT_EQ(fp32_to_bf16(bits_float(0x00018000)), 0x0002);  // subnormal tie -> even
  EXPECT_EQ(fp32_to_bf16(bits_float(0x80008000)), 0x8000);  // subnormal tie -> even (0)
  // nan payloads in the low half would truncate to inf; the quiet bit keeps them nan.
  EXPECT_EQ(fp32_to_bf16(bits_float(0x7F800001)), 0x7FC0);
  EXPECT_EQ(fp32_to_bf16(bits_float(0xFF800001)), 0xFFC0);
  EXPECT_EQ(fp32_to_bf16(bits_float(0x7FC00000)), 0x7FC0);
  EXPECT_EQ(fp32_to_bf16(bits_float(0x7FA12345)), 0x7FE1);
  EXPECT_EQ(float_bits(bf16_to_fp32(0x1234)), 0x12340000u);
}

// ---------------------------------------------------------------------------------------------
// Hand-built blocks

TEST(QuantDequantize, Q8_0HandBlock) {
  BlockQ8_0 b{};
  b.d = 0x3400;  // 0.25
  const int8_t qs[8] = {-128, 127, 0, 1, -1, 2, -3, 100};
  for (int j = 0; j < 32; ++j) b.qs[j] = static_cast<int8_t>(j < 8 ? qs[j] : j);
  const auto y = decode_one(TensorType::Q8_0, b, 32);
  const float expect[8] = {-32.0f, 31.75f, 0.0f, 0.25f, -0.25f, 0.5f, -0.75f, 25.0f};
  for (int j = 0; j < 8; ++j) EXPECT_EQ(y[j], expect[j]) << j;
  EXPECT_EQ(y[8], 2.0f);
  EXPECT_EQ(y[31], 7.75f);
}

TEST(QuantDequantize, Q4_0HandBlock) {
  BlockQ4_0 b{};
  b.d = kHalfHalf;
  // Byte j: low nibble j (element j), high nibble 15 - j (element j + 16).
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto y = decode_one(TensorType::Q4_0, b, 32);
  EXPECT_EQ(y[0], -4.0f);   // (0 - 8) * 0.5
  EXPECT_EQ(y[8], 0.0f);    // (8 - 8) * 0.5
  EXPECT_EQ(y[15], 3.5f);   // (15 - 8) * 0.5
  EXPECT_EQ(y[16], 3.5f);   // high nibble of byte 0 is 15
  EXPECT_EQ(y[31], -4.0f);  // high nibble of byte 15 is 0
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * static_cast<float>(j - 8)) << j;
    EXPECT_EQ(y[j + 16], 0.5f * static_cast<float>(7 - j)) << j;
  }
}

TEST(QuantDequantize, Q4_0NegativeScale) {
  BlockQ4_0 b{};
  b.d = 0xB800;    // -0.5
  b.qs[0] = 0x1F;  // element 0: 15 -> -3.5, element 16: 1 -> 3.5
  const auto y = decode_one(TensorType::Q4_0, b, 32);
  EXPECT_EQ(y[0], -3.5f);
  EXPECT_EQ(y[16], 3.5f);
  EXPECT_EQ(y[1], 4.0f);  // nibble 0 -> -8 * -0.5
}

TEST(QuantDequantize, Q4_1HandBlock) {
  BlockQ4_1 b{};
  b.d = kHalfHalf;
  b.m = 0xBC00;  // -1.0
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  const auto y = decode_one(TensorType::Q4_1, b, 32);
  EXPECT_EQ(y[0], -1.0f);   // 0 * 0.5 - 1
  EXPECT_EQ(y[15], 6.5f);   // 15 * 0.5 - 1
  EXPECT_EQ(y[16], 6.5f);   // high nibble of byte 0 is 15
  EXPECT_EQ(y[31], -1.0f);  // high nibble of byte 15 is 0
  for (int j = 0; j < 16; ++j) {
    EXPECT_EQ(y[j], 0.5f * static_cast<float>(j) - 1.0f) << j;
    EXPECT_EQ(y[j + 16], 0.5f * static_cast<float>(15 - j) - 1.0f) << j;
  }
}

// Sub-block scales and mins used by the Q4_K hand test, with their packed form worked out:
//   sc = {1, 2, 3, 4, 33, 40, 50, 63}, m = {0, 5, 10, 20, 17, 31, 48, 62}
//   bytes 0..3 = sc[k] | (sc[k+4] >> 4) << 6  = {1|2<<6, 2|2<<6, 3|3<<6, 4|3<<6}
//   bytes 4..7 = m[k]  | (m[k+4]  >> 4) << 6  = {0|1<<6, 5|1<<6, 10|3<<6, 20|3<<6}
//   bytes 8..11 = (sc[k+4] & 15) | (m[k+4] & 15) << 4 = {1|1<<4, 8|15<<4, 2|0<<4, 15|14<<4}
constexpr std::array<uint8_t, 12> kPackedScales = {129, 130, 195,  196,  64,   69,
                                                   202, 212, 0x11, 0xF8, 0x02, 0xEF};
constexpr int kSc[8] = {1, 2, 3, 4, 33, 40, 50, 63};
constexpr int kMin[8] = {0, 5, 10, 20, 17, 31, 48, 62};

TEST(QuantDequantize, Q4_KHandBlock) {
  BlockQ4_K b{};
  b.d = kHalfOne;
  b.dmin = kHalfHalf;
  std::memcpy(b.scales, kPackedScales.data(), 12);
  // In every chunk, byte l holds (l % 16) low and 15 - (l % 16) high.
  for (int i = 0; i < 128; ++i) {
    const int l = i % 16;
    b.qs[i] = static_cast<uint8_t>(l | ((15 - l) << 4));
  }
  const auto y = decode_one(TensorType::Q4_K, b, 256);
  EXPECT_EQ(y[0], 0.0f);      // sub 0, q 0: 1*0 - 0.5*0
  EXPECT_EQ(y[5], 5.0f);      // sub 0, q 5: 1*5 - 0
  EXPECT_EQ(y[32], 27.5f);    // sub 1, q 15: 2*15 - 0.5*5
  EXPECT_EQ(y[133], 156.5f);  // sub 4, q 5: 33*5 - 0.5*17
  EXPECT_EQ(y[160], 584.5f);  // sub 5, q 15: 40*15 - 0.5*31
  EXPECT_EQ(y[255], -31.0f);  // sub 7, q 0: 63*0 - 0.5*62
  for (int e = 0; e < 256; ++e) {
    // Element e sits in sub-block e / 32; within its 64-element chunk the first 32 read the low
    // nibbles of bytes 0..31 and the next 32 the high nibbles of the same bytes.
    const int within = e % 64, sub = e / 32;
    const int l = within % 32 % 16;
    const int q = within < 32 ? l : 15 - l;
    const float expect = static_cast<float>(kSc[sub] * q) - 0.5f * static_cast<float>(kMin[sub]);
    EXPECT_EQ(y[e], expect) << e;
  }
}

TEST(QuantDequantize, Q5_KHandBlock) {
  BlockQ5_K b{};
  b.d = kHalfOne;
  b.dmin = kHalfOne;
  // sc = {1, 2, 3, 4, 5, 6, 7, 8}, m = {0, 1, 2, 3, 4, 5, 6, 7}: no high bits needed.
  const uint8_t packed[12] = {1, 2, 3, 4, 0, 1, 2, 3, 0x45, 0x56, 0x67, 0x78};
  std::memcpy(b.scales, packed, 12);
  b.qh[0] = 0xFF;  // fifth bit set for element 0 of every sub-block
  b.qs[1] = 0x9F;  // element 1: low nibble 15; element 33: high nibble 9
  b.qh[1] = 0x02;  // element 33 (sub 1) also gets the fifth bit: q = 25
  const auto y = decode_one(TensorType::Q5_K, b, 256);
  const float first[8] = {16, 31, 46, 61, 76, 91, 106, 121};  // sc*16 - m
  for (int s = 0; s < 8; ++s) EXPECT_EQ(y[32 * s], first[s]) << s;
  EXPECT_EQ(y[1], 15.0f);   // 1*15 - 0
  EXPECT_EQ(y[33], 49.0f);  // 2*25 - 1
  EXPECT_EQ(y[2], 0.0f);
  EXPECT_EQ(y[34], -1.0f);   // q 0 in sub 1
  EXPECT_EQ(y[255], -7.0f);  // q 0 in sub 7
}

TEST(QuantDequantize, Q6_KHandBlock) {
  BlockQ6_K b{};
  b.d = kHalfHalf;
  const int8_t sc[16] = {1, -2, 3, -4, 5, -6, 7, -8, 9, -10, 11, -12, 13, -14, 15, -16};
  std::memcpy(b.scales, sc, 16);
  // First half: element 0 = 0xA | 0<<4 = 10, element 32 = 7 | 1<<4 = 23,
  // element 64 = 3 | 2<<4 = 35, element 96 = 15 | 3<<4 = 63.
  b.ql[0] = 0x3A;
  b.ql[32] = 0xF7;
  b.qh[0] = 0xE4;  // 0b11'10'01'00
  // Second half, l = 5: element 133 = 1 | 3<<4 = 49, element 165 = 0 | 2<<4 = 32,
  // element 197 = 2 | 1<<4 = 18, element 229 = 0 | 0 = 0.
  b.ql[64 + 5] = 0x21;
  b.qh[32 + 5] = 0x1B;  // 0b00'01'10'11
  const auto y = decode_one(TensorType::Q6_K, b, 256);
  EXPECT_EQ(y[0], -11.0f);     // 0.5 * 1 * (10 - 32)
  EXPECT_EQ(y[32], -13.5f);    // 0.5 * 3 * (23 - 32)
  EXPECT_EQ(y[64], 7.5f);      // 0.5 * 5 * (35 - 32)
  EXPECT_EQ(y[96], 108.5f);    // 0.5 * 7 * (63 - 32)
  EXPECT_EQ(y[133], 76.5f);    // 0.5 * 9 * (49 - 32)
  EXPECT_EQ(y[165], 0.0f);     // 0.5 * 11 * (32 - 32)
  EXPECT_EQ(y[197], -91.0f);   // 0.5 * 13 * (18 - 32)
  EXPECT_EQ(y[229], -240.0f);  // 0.5 * 15 * (0 - 32)
  // Every untouched element has q = 0, i.e. -32 after the offset.
  for (int e = 0; e < 256; ++e) {
    if (e == 0 || e == 32 || e == 64 || e == 96 || e == 133 || e == 165 || e == 197 || e == 229)
      continue;
    EXPECT_EQ(y[e], -16.0f * static_cast<float>(sc[e / 16])) << e;
  }
}

TEST(QuantDequantize, UnalignedRowPointer) {
  // Blocks at odd addresses (as in an mmapped file) decode the same.
  BlockQ6_K b{};
  b.d = kHalfOne;
  for (int k = 0; k < 16; ++k) b.scales[k] = static_cast<int8_t>(k + 1);
  std::vector<unsigned char> buf(sizeof(b) * 2 + 1);
  std::memcpy(buf.data() + 1, &b, sizeof(b));
  std::memcpy(buf.data() + 1 + sizeof(b), &b, sizeof(b));
  std::vector<float> y(512);
  dequantize_row(TensorType::Q6_K, buf.data() + 1, y.data(), 512);
  EXPECT_EQ(y[0], -32.0f);
  EXPECT_EQ(y[256 + 255], -32.0f * 16);
}

TEST(QuantDequantize, PlainFloatTypes) {
  const float f32[3] = {1.5f, -2.0f, 0.0f};
  float out[3];
  dequantize_row(TensorType::F32, f32, out, 3);
  EXPECT_EQ(out[0], 1.5f);
  EXPECT_EQ(out[1], -2.0f);
  const uint16_t f16[3] = {0x3C00, 0xC000, 0x3E00};  // 1, -2, 1.5
  dequantize_row(TensorType::F16, f16, out, 3);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[2], 1.5f);
  const uint16_t bf16[3] = {0x3F80, 0xC000, 0x3FC0};  // 1, -2, 1.5
  dequantize_row(TensorType::BF16, bf16, out, 3);
  EXPECT_EQ(out[0], 1.0f);
  EXPECT_EQ(out[1], -2.0f);
  EXPECT_EQ(out[2], 1.5f);
}

// ---------------------------------------------------------------------------------------------
// Quantize: hand-computed bytes

TEST(QuantEncode, Q8_0HandBytes) {
  // Block 0: amax 127 -> d = 1, id = 1, quants are roundf(x) (ties away from zero).
  // Block 1: amax 63.5 -> d = 0.5, id = 2.
  std::vector<float> x(64, 0.0f);
  const float b0[8] = {127, -127, 0.5f, -0.5f, 1.5f, 2.5f, -2.5f, 3.49f};
  const int8_t q0[8] = {127, -127, 1, -1, 2, 3, -3, 3};
  const float b1[6] = {-63.5f, 0.25f, -0.25f, 0.75f, 10.0f, 0.2f};
  const int8_t q1[6] = {-127, 1, -1, 2, 20, 0};
  for (int j = 0; j < 8; ++j) x[j] = b0[j];
  for (int j = 0; j < 6; ++j) x[32 + j] = b1[j];
  std::array<unsigned char, 68> bytes{};
  quantize_row(TensorType::Q8_0, x.data(), bytes.data(), 64);
  std::array<unsigned char, 68> expect{};
  expect[0] = 0x00;  // d = 1.0 = 0x3C00, little-endian
  expect[1] = 0x3C;
  for (int j = 0; j < 8; ++j) expect[2 + j] = static_cast<unsigned char>(q0[j]);
  expect[34] = 0x00;  // d = 0.5 = 0x3800
  expect[35] = 0x38;
  for (int j = 0; j < 6; ++j) expect[36 + j] = static_cast<unsigned char>(q1[j]);
  EXPECT_EQ(bytes, expect);
}

TEST(QuantEncode, Q4_0HandBytes) {
  // Extreme -8 -> d = -8 / -8 = 1, id = 1; level = min(15, trunc(x + 8.5)).
  std::vector<float> x(32, 0.0f);
  x[0] = -8.0f;   // 0.5 -> 0
  x[1] = 7.0f;    // 15.5 -> 15
  x[2] = 0.5f;    // 9.0 -> 9
  x[3] = -0.5f;   // 8.0 -> 8
  x[4] = 0.49f;   // 8.99 -> 8
  x[5] = -3.0f;   // 5.5 -> 5
  x[16] = 7.9f;   // 16.4 -> 16 -> clamped 15
  x[17] = -7.6f;  // 0.9 -> 0
  // Everything else is 0 -> 8.
  std::array<unsigned char, 18> bytes{};
  quantize_row(TensorType::Q4_0, x.data(), bytes.data(), 32);
  std::array<unsigned char, 18> expect{};
  expect[0] = 0x00;  // d = 1.0
  expect[1] = 0x3C;
  const int lo[16] = {0, 15, 9, 8, 8, 5, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8};
  const int hi[16] = {15, 0, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8};
  for (int j = 0; j < 16; ++j) expect[2 + j] = static_cast<unsigned char>(lo[j] | (hi[j] << 4));
  EXPECT_EQ(bytes, expect);

  // A positive extreme flips the scale sign: 4 -> d = -0.5 (0xB800), id = -2.
  std::vector<float> p(32, 0.0f);
  p[0] = 4.0f;   // -8 + 8.5 -> 0
  p[1] = -3.0f;  // 6 + 8.5 -> 14
  quantize_row(TensorType::Q4_0, p.data(), bytes.data(), 32);
  EXPECT_EQ(bytes[0], 0x00);
  EXPECT_EQ(bytes[1], 0xB8);
  EXPECT_EQ(bytes[2], 0x80);  // element 0 -> 0, element 16 (0.0) -> 8
  EXPECT_EQ(bytes[3], 0x8E);
}

TEST(QuantEncode, Q4_1HandBytes) {
  // min -1, max 14 -> d = 15 / 15 = 1, id = 1, m = -1; level = min(15, trunc(x + 1 + 0.5)).
  std::vector<float> x(32, 0.0f);  // 0 -> trunc(1.5) = 1
  x[0] = -1.0f;   // 0.5 -> 0
  x[1] = 14.0f;   // 15.5 -> 15
  x[2] = 0.49f;   // 1.99 -> 1
  x[3] = 0.5f;    // 2.0 -> 2
  x[16] = 3.2f;   // 4.7 -> 4
  std::array<unsigned char, 20> bytes{};
  quantize_row(TensorType::Q4_1, x.data(), bytes.data(), 32);
  std::array<unsigned char, 20> expect{};
  expect[1] = 0x3C;  // d = 1.0
  expect[3] = 0xBC;  // m = -1.0
  const int lo[16] = {0, 15, 1, 2, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  const int hi[16] = {4, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1};
  for (int j = 0; j < 16; ++j) expect[4 + j] = static_cast<unsigned char>(lo[j] | (hi[j] << 4));
  EXPECT_EQ(bytes, expect);
}

TEST(QuantEncode, ZeroRowsGiveZeroScales) {
  const std::vector<float> zeros(256, 0.0f);
  std::vector<unsigned char> bytes(256);
  // Q8_0: d = 0 and all quants 0.
  quantize_row(TensorType::Q8_0, zeros.data(), bytes.data(), 32);
  for (int i = 0; i < 34; ++i) EXPECT_EQ(bytes[i], 0) << i;
  // Q4_0: d = 0 / -8 = -0 (fp16 0x8000), every level trunc(0 + 8.5) = 8.
  quantize_row(TensorType::Q4_0, zeros.data(), bytes.data(), 32);
  EXPECT_EQ(bytes[0], 0x00);
  EXPECT_EQ(bytes[1], 0x80);
  for (int i = 2; i < 18; ++i) EXPECT_EQ(bytes[i], 0x88) << i;
  // K types: the whole block is zero.
  const std::pair<TensorType, int> k_types[] = {
      {TensorType::Q4_K, 144}, {TensorType::Q5_K, 176}, {TensorType::Q6_K, 210}};
  for (auto [type, size] : k_types) {
    std::fill(bytes.begin(), bytes.end(), 0xAA);
    quantize_row(type, zeros.data(), bytes.data(), 256);
    for (int i = 0; i < size; ++i) ASSERT_EQ(bytes[i], 0) << info(type).name << " byte " << i;
  }
}

TEST(QuantEncode, PlainFloatTypes) {
  const float x[4] = {1.0f, -2.0f, 1.0f + std::ldexp(1.0f, -11), 65520.0f};
  uint16_t h[4];
  quantize_row(TensorType::F16, x, h, 4);
  EXPECT_EQ(h[0], 0x3C00);
  EXPECT_EQ(h[1], 0xC000);
  EXPECT_EQ(h[2], 0x3C00);
  EXPECT_EQ(h[3], 0x7C00);
  quantize_row(TensorType::BF16, x, h, 4);
  EXPECT_EQ(h[0], 0x3F80);
  EXPECT_EQ(h[1], 0xC000);
  EXPECT_EQ(h[2], 0x3F80);
  EXPECT_EQ(h[3], 0x4780);  // 65520 = 0x477FF000 -> rounds up to 65536
  float f[4];
  quantize_row(TensorType::F32, x, f, 4);
  EXPECT_EQ(std::memcmp(f, x, sizeof(x)), 0);
}

// A K-quant with a handful of exactly representable levels: levels recoverable exactly means
// the scale search, 6-bit scale packing and element packing line up with the decoder.
TEST(QuantEncode, Q6_KRecoversSmallIntegers) {
  // Every sub-block holds integers k/32 with k in [-32, 31] and -1 (k = -32) as its extreme.
  // The first guess l = k is exact, so every sub-block scale is exactly 1/32 (all the float
  // sums involved are exact), d = -2^-12, the int8 scales are all -128, and the block decodes
  // back exactly.
  std::vector<float> x(256);
  for (int e = 0; e < 256; ++e) {
    x[e] = e % 16 == 0 ? -1.0f : static_cast<float>((e * 37) % 63 - 31) / 32.0f;
  }
  std::vector<unsigned char> bytes(210);
  quantize_row(TensorType::Q6_K, x.data(), bytes.data(), 256);
  std::vector<float> y(256);
  dequantize_row(TensorType::Q6_K, bytes.data(), y.data(), 256);
  for (int e = 0; e < 256; ++e) EXPECT_EQ(y[e], x[e]) << e;
}

// Byte-identity with llama-quantize. The expected FNV-1a hashes were produced by ggml's own
// quantize_row_*_ref (libggml-base, x86-64 build) on the same input, not by reprise. The input
// uses only exactly rounded IEEE operations with no a*b+c, so it is the same on every platform.
// 256 blocks of five shapes (cubed uniform, uniform, sum of 4 uniforms, sparse, rare outliers),
// some shifted off-centre or made one-signed, scaled by 2^-4..2^3.
std::vector<float> golden_input() {
  constexpr size_t kN = 65536;
  std::vector<float> x(kN);
  uint32_t s = 12345;
  auto uniform = [&s] {  // [-1, 1), exact
    s = s * 1664525u + 1013904223u;
    return static_cast<float>(static_cast<int>(s >> 9) - (1 << 22)) / static_cast<float>(1 << 22);
  };
  for (size_t i = 0; i < kN; ++i) {
    const int blk = static_cast<int>(i / 256);
    const float u = uniform();
    float v = 0;
    switch (blk % 5) {
      case 0:
        v = u * u * u;
        break;
      case 1:
        v = u;
        break;
      case 2: {  // near-normal; one call per statement keeps the draw order fixed
        const float a = uniform();
        const float b = uniform();
        const float c = uniform();
        v = (u + a) + (b + c);
        break;
      }
      case 3:
        v = (s >> 28) == 0 ? u : 0.0f;
        break;
      default:
        v = (s >> 26) == 0 ? u * 32.0f : u;
        break;
    }
    if (blk % 3 == 1) v = v + 0.5f;       // off-centre
    if (blk % 3 == 2) v = -std::fabs(v);  // one-signed
    x[i] = v * std::ldexp(1.0f, blk % 8 - 4);
  }
  return x;
}

uint64_t fnv1a(const std::vector<unsigned char>& bytes) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

TEST(QuantEncode, MatchesGgmlReferenceBytes) {
  const auto x = golden_input();
  const std::pair<TensorType, uint64_t> expect[] = {
      {TensorType::Q8_0, 0x7ca832760ee82e42ull}, {TensorType::Q4_0, 0xd96046368e8d455full},
      {TensorType::Q4_K, 0x3523cae368b61b06ull}, {TensorType::Q5_K, 0x9ccc83a6925eca5cull},
      {TensorType::Q6_K, 0x558633213a88697aull},
  };
  for (auto [type, hash] : expect) {
    std::vector<unsigned char> bytes(row_bytes(type, x.size()));
    quantize_row(type, x.data(), bytes.data(), static_cast<int64_t>(x.size()));
    EXPECT_EQ(fnv1a(bytes), hash) << info(type).name;
  }
}

// ---------------------------------------------------------------------------------------------
// Random round trips and dot consistency

struct TypeCase {
  TensorType type;
  double max_rel_rms;  // bound on rms(error) / rms(x) for N(0, 1) rows
};

// Measured rms(error) / rms(x) for a seeded N(0, 1) row of 4096: F16 0.021%, BF16 0.165%,
// Q8_0 0.545% (step amax/127 with amax ~2.5 sigma per 32), Q4_0 8.77%, Q4_1 7.88%, Q4_K 7.30%, Q5_K 3.62%,
// Q6_K 1.78%. The bounds leave ~20% headroom (another standard library's normal_distribution
// draws different numbers).
constexpr TypeCase kCases[] = {
    {TensorType::F32, 0.0},     {TensorType::F16, 2.5e-4},  {TensorType::BF16, 2e-3},
    {TensorType::Q8_0, 0.0065}, {TensorType::Q4_0, 0.105},  {TensorType::Q4_1, 0.095},  {TensorType::Q4_K, 0.088},
    {TensorType::Q5_K, 0.044},  {TensorType::Q6_K, 0.0215},
};

std::vector<float> random_row(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = dist(rng);
  return x;
}

double rel_rms_error(const std::vector<float>& x, const std::vector<float>& y) {
  double err = 0, ref = 0;
  for (size_t i = 0; i < x.size(); ++i) {
    err += (static_cast<double>(x[i]) - y[i]) * (static_cast<double>(x[i]) - y[i]);
    ref += static_cast<double>(x[i]) * x[i];
  }
  return std::sqrt(err / ref);
}

class QuantRoundTrip : public ::testing::TestWithParam<TypeCase> {};

TEST_P(QuantRoundTrip, ErrorWithinBound) {
  const auto [type, bound] = GetParam();
  constexpr int64_t n = 4096;
  const auto x = random_row(n, 1234);
  std::vector<unsigned char> bytes(row_bytes(type, n));
  quantize_row(type, x.data(), bytes.data(), n);
  std::vector<float> y(n);
  dequantize_row(type, bytes.data(), y.data(), n);
  const double rel = rel_rms_error(x, y);
  EXPECT_LE(rel, bound) << info(type).name;
  if (type != TensorType::F32) {
    EXPECT_GT(rel, 0.0) << "suspiciously exact";
  }
  RecordProperty("rel_rms_error", std::to_string(rel));
}

TEST_P(QuantRoundTrip, ScaledRowsKeepRelativeError) {
  // Quantization is scale-invariant up to fp16 rounding of the scales.
  const auto [type, bound] = GetParam();
  constexpr int64_t n = 1024;
  auto x = random_row(n, 99);
  for (auto& v : x) v *= 1e-3f;
  std::vector<unsigned char> bytes(row_bytes(type, n));
  quantize_row(type, x.data(), bytes.data(), n);
  std::vector<float> y(n);
  dequantize_row(type, bytes.data(), y.data(), n);
  EXPECT_LE(rel_rms_error(x, y), bound * 1.1 + 1e-6) << info(type).name;
}

TEST_P(QuantRoundTrip, DotMatchesDequantizedDot) {
  const TensorType type = GetParam().type;
  constexpr int64_t n = 2048;
  const auto w = random_row(n, 7);
  const auto x = random_row(n, 8);
  std::vector<unsigned char> bytes(row_bytes(type, n));
  quantize_row(type, w.data(), bytes.data(), n);
  std::vector<float> y(n);
  dequantize_row(type, bytes.data(), y.data(), n);
  double ref = 0, mag = 0;
  for (int64_t i = 0; i < n; ++i) {
    ref += static_cast<double>(y[i]) * x[i];
    mag += std::fabs(static_cast<double>(y[i]) * x[i]);
  }
  const float got = dot_row(type, bytes.data(), x.data(), n);
  EXPECT_NEAR(got, ref, 1e-4 * std::fabs(ref) + 1e-6 * mag) << info(type).name;
}

TEST_P(QuantRoundTrip, RequantizingIsStable) {
  // The decoded row re-encodes to a row that decodes within the same error bound.
  const TensorType type = GetParam().type;
  constexpr int64_t n = 512;
  const auto x = random_row(n, 3);
  std::vector<unsigned char> a(row_bytes(type, n)), b(row_bytes(type, n));
  std::vector<float> ya(n), yb(n);
  quantize_row(type, x.data(), a.data(), n);
  dequantize_row(type, a.data(), ya.data(), n);
  quantize_row(type, ya.data(), b.data(), n);
  dequantize_row(type, b.data(), yb.data(), n);
  EXPECT_LE(rel_rms_error(ya, yb), GetParam().max_rel_rms) << info(type).name;
}

INSTANTIATE_TEST_SUITE_P(QuantTypes, QuantRoundTrip, ::testing::ValuesIn(kCases),
                         [](const ::testing::TestParamInfo<TypeCase>& p) {
                           return std::string(reprise::info(p.param.type).name);
                         });

TEST(QuantDot, HandValues) {
  BlockQ4_0 b{};
  b.d = kHalfHalf;
  for (int j = 0; j < 16; ++j) b.qs[j] = static_cast<uint8_t>(j | ((15 - j) << 4));
  std::vector<float> x(32, 0.0f);
  x[0] = 1.0f;    // weight -4
  x[15] = 2.0f;   // weight 3.5
  x[16] = -1.0f;  // weight 3.5
  EXPECT_EQ(dot_row(TensorType::Q4_0, &b, x.data(), 32), -4.0f + 7.0f - 3.5f);
  const float w[3] = {1.0f, 2.0f, 3.0f};
  const float v[3] = {0.5f, -1.0f, 2.0f};
  EXPECT_EQ(dot_row(TensorType::F32, w, v, 3), 4.5f);
}

// ---------------------------------------------------------------------------------------------
// Errors

TEST(QuantErrors, UnsupportedTypesThrowNamingTheType) {
  const TensorType bad[] = {TensorType::Q5_0, TensorType::Q5_1, TensorType::Q8_1,
                            TensorType::Q2_K, TensorType::Q3_K, TensorType::Q8_K, TensorType::I8,
                            TensorType::I32,  TensorType::F64};
  std::vector<unsigned char> buf(4096);
  std::vector<float> f(256);
  for (TensorType t : bad) {
    const std::string name(info(t).name);
    try {
      dequantize_row(t, buf.data(), f.data(), 256);
      ADD_FAILURE() << "dequantize_row accepted " << name;
    } catch (const Error& e) {
      EXPECT_NE(std::string(e.what()).find(name), std::string::npos) << e.what();
    }
    EXPECT_THROW(dot_row(t, buf.data(), f.data(), 256), Error) << name;
    EXPECT_THROW(quantize_row(t, f.data(), buf.data(), 256), Error) << name;
  }
  EXPECT_THROW(dequantize_row(static_cast<TensorType>(99), buf.data(), f.data(), 32), Error);
}

TEST(QuantErrors, PartialBlockThrows) {
  std::vector<unsigned char> buf(4096);
  std::vector<float> f(512);
  EXPECT_THROW(dequantize_row(TensorType::Q8_0, buf.data(), f.data(), 33), Error);
  EXPECT_THROW(dot_row(TensorType::Q4_K, buf.data(), f.data(), 128), Error);
  EXPECT_THROW(quantize_row(TensorType::Q6_K, f.data(), buf.data(), 300), Error);
  EXPECT_NO_THROW(dequantize_row(TensorType::Q4_K, buf.data(), f.data(), 0));
}

}  // namespace
}  // namespace reprise::kernels
