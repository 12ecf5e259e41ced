// Every SIMD kernel set this CPU supports, against the portable scalar reference.
//
// Tolerances are scale-free and stated per test:
// - F32 activations (gemm, matvec of F32/F16/BF16 weights): |y - ref| <= 1e-5 * sum_i |w_i x_i|
//   (float summation in another order, and single- instead of double-rounded dequantization).
// - 8-bit activations (matvec of quantized weights, and gemm_rounded where the ISA has it): each
//   activation is off by at most max|x| / 254 (half a step of a block scale max|x_block| / 127),
//   so |y - ref| <= sum_i |w_i| * max|x| / 254, plus the F32 allowance above.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <random>
#include <sstream>
#include <vector>

#include "kernels/dispatch.h"
#include "kernels/isa_kernels.h"
#include "kernels/ops.h"
#include "kernels/packed.h"
#include "kernels/quant.h"
#include "util/error.h"

namespace reprise::kernels {
namespace {

const TensorType kTypes[] = {
    TensorType::F32,  TensorType::F16,  TensorType::BF16, TensorType::Q8_0,   TensorType::Q4_0,
    TensorType::Q4_1, TensorType::Q5_0, TensorType::Q5_1, TensorType::IQ4_NL, TensorType::Q2_K,
    TensorType::Q3_K, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K,   TensorType::IQ4_XS};

const IsaKernels* table(Isa isa) {
  switch (isa) {
    case Isa::Scalar:
      return scalar_kernels();
    case Isa::Avx2:
      return avx2_kernels();
    case Isa::AvxVnni:
      return avxvnni_kernels();
    case Isa::Avx512:
      return avx512_kernels();
    default:
      return nullptr;  // no kernels yet; isa_supported() is false for them
  }
}

std::vector<Isa> simd_isas() {
  std::vector<Isa> out;
  for (Isa i : supported_isas())
    if (i != Isa::Scalar && table(i)) out.push_back(i);
  return out;
}

std::vector<float> randn(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, scale);
  std::vector<float> v(n);
  for (auto& x : v) x = nd(rng);
  return v;
}

// A rows x cols weight matrix of `type` (random, with a few outliers so scales vary by block).
struct Weights {
  TensorType type;
  int64_t rows, cols;
  uint64_t stride;
  std::vector<std::byte> data;
  std::vector<float> deq;  // [rows, cols] decoded by the reference
};

Weights make_weights(TensorType type, int64_t rows, int64_t cols, uint32_t seed) {
  Weights w{type, rows, cols, row_bytes(type, cols), {}, {}};
  auto f = randn(rows * cols, seed, 0.05f);
  for (size_t i = 0; i < f.size(); i += 97) f[i] *= 8;
  w.data.resize(w.stride * rows);
  w.deq.resize(rows * cols);
  for (int64_t r = 0; r < rows; ++r) {
    quantize_row(type, &f[r * cols], w.data.data() + r * w.stride, cols);
    dequantize_row(type, w.data.data() + r * w.stride, &w.deq[r * cols], cols);
  }
  return w;
}

uint64_t act_bytes(ActFormat f, int64_t n) {
  if (f == ActFormat::Q8_32) return n / 32 * sizeof(ActQ8_32);
  if (f == ActFormat::Q8_256) return n / 256 * sizeof(ActQ8_256);
  if (f == ActFormat::Q8_32x2) return (n + 63) / 64 * sizeof(ActQ8_32x2);
  return n * sizeof(float);
}

class KernelTest : public ::testing::TestWithParam<Isa> {};

TEST_P(KernelTest, MatvecMatchesReference) {
  const IsaKernels& k = *table(GetParam());
  const int64_t rows = 37;
  // 800 = 25 blocks of 32: kernels that take blocks in pairs must handle the odd last one
  // without reading past the row.
  std::vector<std::pair<TensorType, int64_t>> cases;
  for (TensorType type : kTypes) {
    cases.emplace_back(type, 768);
    if (info(type).block_elems == 32) cases.emplace_back(type, 800);
  }
  for (auto [type, cols] : cases) {
    SCOPED_TRACE(std::string(info(type).name) + " cols " + std::to_string(cols));
    Weights w = make_weights(type, rows, cols, 11 + static_cast<uint32_t>(type));
    auto x = randn(cols, 5);
    x[100] = 6;  // an outlier activation: its block gets a coarse scale
    const ActFormat f = k.matvec_act(static_cast<uint32_t>(type));
    std::vector<std::byte> act(act_bytes(f, cols));
    k.quantize_act(f, x.data(), cols, act.data());
    std::vector<float> y(rows);
    k.matvec(static_cast<uint32_t>(type), w.data.data(), w.stride, rows, cols, act.data(),
             y.data());
    float xmax = 0;
    for (float v : x) xmax = std::max(xmax, std::fabs(v));
    for (int64_t r = 0; r < rows; ++r) {
      const float ref = dot_row(type, w.data.data() + r * w.stride, x.data(), cols);
      double l1_prod = 0, l1_w = 0;
      for (int64_t c = 0; c < cols; ++c) {
        l1_prod += std::fabs(w.deq[r * cols + c] * x[c]);
        l1_w += std::fabs(w.deq[r * cols + c]);
      }
      double tol = 1e-5 * l1_prod;
      if (f != ActFormat::F32) tol += l1_w * xmax / 254.0;
      EXPECT_NEAR(y[r], ref, tol) << "row " << r;
    }
  }
}

TEST_P(KernelTest, GemmMatchesReference) {
  const IsaKernels& k = *table(GetParam());
  const int64_t rows = 37, cols = 512 + 256, T = 7;  // rows and T not multiples of the tiles
  std::vector<float> scratch(gemm_scratch_floats(cols));
  for (TensorType type : kTypes) {
    SCOPED_TRACE(std::string(info(type).name));
    Weights w = make_weights(type, rows, cols, 21 + static_cast<uint32_t>(type));
    auto x = randn(T * cols, 6);
    const int64_t ldy = rows + 3;
    std::vector<float> y(T * ldy, -1.0f);
    k.gemm(static_cast<uint32_t>(type), w.data.data(), w.stride, rows, cols, x.data(), T, y.data(),
           ldy, scratch.data());
    for (int64_t t = 0; t < T; ++t) {
      for (int64_t r = 0; r < rows; ++r) {
        const float ref = dot_row(type, w.data.data() + r * w.stride, &x[t * cols], cols);
        double l1 = 0;
        for (int64_t c = 0; c < cols; ++c) l1 += std::fabs(w.deq[r * cols + c] * x[t * cols + c]);
        EXPECT_NEAR(y[t * ldy + r], ref, 1e-5 * l1) << "token " << t << " row " << r;
      }
      for (int64_t r = rows; r < ldy; ++r) EXPECT_EQ(y[t * ldy + r], -1.0f) << "wrote past rows";
    }
  }
}

// The bound on |y - ref| that gemm_rounded's activation encoding adds: none for float weights
// (F32 activations), the 8-bit bound above for the quantized types.
double act_rounding(TensorType type, double l1_w, float xmax) {
  return info(type).block_elems == 1 ? 0.0 : l1_w * xmax / 254.0;
}

// The prefill kernels with rounded activations, where the ISA has them: every token and row
// within the activation bound of the reference, for row counts that leave a partial 16- and
// 32-row panel, a token count that leaves a partial tile, and a row stride wider than the row.
TEST_P(KernelTest, GemmRoundedMatchesReference) {
  const IsaKernels& k = *table(GetParam());
  if (!k.gemm_rounded) GTEST_SKIP() << "no rounded-activation gemm on " << isa_name(GetParam());
  const int64_t T = 13;
  int covered = 0;
  // 173: an odd row for the float types (a 16-lane step cut short).
  for (auto [type, cols] : std::vector<std::pair<TensorType, int64_t>>{{TensorType::F32, 173},
                                                                       {TensorType::F16, 768},
                                                                       {TensorType::F16, 173},
                                                                       {TensorType::BF16, 768},
                                                                       {TensorType::BF16, 173},
                                                                       {TensorType::Q8_0, 768},
                                                                       {TensorType::Q4_0, 768},
                                                                       {TensorType::Q4_K, 768},
                                                                       {TensorType::Q5_K, 768},
                                                                       {TensorType::Q6_K, 768}}) {
    const auto id = static_cast<uint32_t>(type);
    const int64_t ab = k.gemm_act_row_bytes(id, cols);
    if (ab == 0) continue;
    ++covered;
    std::vector<float> scratch(gemm_scratch_floats(cols));
    for (int64_t rows : {7, 16, 45, 64}) {
      SCOPED_TRACE(std::string(info(type).name) + " cols " + std::to_string(cols) + " rows " +
                   std::to_string(rows));
      Weights w = make_weights(type, rows, cols, 41 + static_cast<uint32_t>(type));
      auto x = randn(T * cols, 8);
      x[3 * cols + 100] = 9;  // an outlier: its block gets a coarse scale
      std::vector<std::byte> act(ab * T);
      for (int64_t t = 0; t < T; ++t) k.gemm_round_act(id, &x[t * cols], cols, &act[t * ab]);
      const int64_t ldy = rows + 5;
      std::vector<float> y(T * ldy, -1.0f);
      k.gemm_rounded(id, w.data.data(), w.stride, rows, cols, act.data(), T, y.data(), ldy,
                     scratch.data());
      for (int64_t t = 0; t < T; ++t) {
        float xmax = 0;
        for (int64_t c = 0; c < cols; ++c) xmax = std::max(xmax, std::fabs(x[t * cols + c]));
        for (int64_t r = 0; r < rows; ++r) {
          const float ref = dot_row(type, w.data.data() + r * w.stride, &x[t * cols], cols);
          double l1_prod = 0, l1_w = 0;
          for (int64_t c = 0; c < cols; ++c) {
            l1_prod += std::fabs(w.deq[r * cols + c] * x[t * cols + c]);
            l1_w += std::fabs(w.deq[r * cols + c]);
          }
          EXPECT_NEAR(y[t * ldy + r], ref, 1e-5 * l1_prod + act_rounding(type, l1_w, xmax))
              << "token " << t << " row " << r;
        }
        for (int64_t r = rows; r < ldy; ++r) EXPECT_EQ(y[t * ldy + r], -1.0f) << "wrote past rows";
      }
    }
  }
  // Every case above on AVX-512; the five quantized types on AVX2 and AVX-VNNI, whose float
  // types keep the F32 gemm.
  EXPECT_EQ(covered, GetParam() == Isa::Avx512 ? 10 : 5);
}

// The integer sums are exact and every ISA turns them into float with the same operations in the
// same order, so the integer prefill kernels agree bit for bit across ISAs (here: with the
// AVX2 one, on its own activation encoding).
TEST_P(KernelTest, GemmRoundedIntegerEqualsAvx2BitForBit) {
  const IsaKernels& k = *table(GetParam());
  const IsaKernels* ref = table(Isa::Avx2);
  if (!k.gemm_rounded || !ref || !ref->gemm_rounded) GTEST_SKIP() << "no integer prefill";
  const int64_t T = 7, cols = 512, rows = 45;
  std::vector<float> scratch(gemm_scratch_floats(cols));
  for (TensorType type :
       {TensorType::Q8_0, TensorType::Q4_0, TensorType::Q4_K, TensorType::Q5_K, TensorType::Q6_K}) {
    SCOPED_TRACE(info(type).name);
    const auto id = static_cast<uint32_t>(type);
    Weights w = make_weights(type, rows, cols, 77);
    auto x = randn(T * cols, 12);
    x[2 * cols + 5] = -11;  // an outlier, as above
    std::vector<float> got(T * rows), want(T * rows);
    for (auto [kt, y] : {std::pair{&k, &got}, std::pair{ref, &want}}) {
      const int64_t ab = kt->gemm_act_row_bytes(id, cols);
      ASSERT_GT(ab, 0);
      std::vector<std::byte> act(ab * T);
      for (int64_t t = 0; t < T; ++t) kt->gemm_round_act(id, &x[t * cols], cols, &act[t * ab]);
      kt->gemm_rounded(id, w.data.data(), w.stride, rows, cols, act.data(), T, y->data(), rows,
                       scratch.data());
    }
    for (size_t i = 0; i < got.size(); ++i)
      ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
          << "token " << i / rows << " row " << i % rows << ": " << got[i] << " vs " << want[i];
  }
}

// The integer prefill's types, which have a packed form on every ISA that has the kernels.
const TensorType kIntPrefillTypes[] = {TensorType::Q8_0, TensorType::Q4_0, TensorType::Q4_K,
                                       TensorType::Q5_K, TensorType::Q6_K};

void expect_same_bits(const std::vector<float>& got, const std::vector<float>& want, int64_t ldy) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_EQ(std::bit_cast<uint32_t>(got[i]), std::bit_cast<uint32_t>(want[i]))
        << "token " << i / ldy << " row " << i % ldy << ": " << got[i] << " vs " << want[i];
}

// Pre-packed weights (gemm_pack_panels + gemm_packed) give gemm_rounded's bits exactly: the same
// panels and tiles, only unpacked ahead of time. Rows that leave a partial panel (7, 45, 77 for
// 16- and 32-row panels), T of one tile, odd and >= 64, panels packed and run in two ranges, and
// nothing written past the rows.
TEST_P(KernelTest, PackedGemmEqualsUnpackedBitForBit) {
  const IsaKernels& k = *table(GetParam());
  if (!k.gemm_packed) GTEST_SKIP() << "no packed prefill on " << isa_name(GetParam());
  ASSERT_TRUE(k.gemm_panel_bytes && k.gemm_pack_panels && k.gemm_rounded);
  for (TensorType type : kIntPrefillTypes) {
    const auto id = static_cast<uint32_t>(type);
    for (int64_t cols : {512, 768}) {
      int64_t panel_rows = 0;
      const int64_t pb = k.gemm_panel_bytes(id, cols, &panel_rows);
      ASSERT_GT(pb, 0) << info(type).name;
      EXPECT_EQ(pb % 64, 0);
      // 1 byte per quant, a float scale per bk (Q6_K: 16, else 32), a float offset (K4/K5).
      const int64_t bk = type == TensorType::Q6_K ? 16 : 32;
      const bool offset = type == TensorType::Q4_K || type == TensorType::Q5_K;
      EXPECT_EQ(pb, panel_rows * cols + panel_rows * (cols / bk) * 4 * (offset ? 2 : 1));
      std::vector<float> scratch(gemm_scratch_floats(cols));
      for (int64_t rows : {7, 45, 77}) {
        Weights w = make_weights(type, rows, cols, 91 + static_cast<uint32_t>(rows));
        const int64_t n_panels = (rows + panel_rows - 1) / panel_rows, half = n_panels / 2;
        std::vector<std::byte> packed(static_cast<size_t>(n_panels * pb) + 64);
        void* pk = packed.data() + (64 - reinterpret_cast<uintptr_t>(packed.data()) % 64) % 64;
        k.gemm_pack_panels(id, w.data.data(), w.stride, rows, cols, half, n_panels, pk,
                           scratch.data());
        k.gemm_pack_panels(id, w.data.data(), w.stride, rows, cols, 0, half, pk, scratch.data());
        for (int64_t T : {1, 3, 6, 13, 67}) {
          SCOPED_TRACE(fmt::format("{} cols {} rows {} T {}", info(type).name, cols, rows, T));
          auto x = randn(T * cols, 17 + static_cast<uint32_t>(T));
          x[(T - 1) * cols + 33] = 10;  // an outlier: its block gets a coarse scale
          const int64_t ab = k.gemm_act_row_bytes(id, cols);
          std::vector<std::byte> act(ab * T);
          for (int64_t t = 0; t < T; ++t) k.gemm_round_act(id, &x[t * cols], cols, &act[t * ab]);
          const int64_t ldy = rows + 3;
          std::vector<float> want(T * ldy, -1.0f), got(T * ldy, -1.0f);
          k.gemm_rounded(id, w.data.data(), w.stride, rows, cols, act.data(), T, want.data(), ldy,
                         scratch.data());
          k.gemm_packed(id, pk, rows, cols, 0, half, act.data(), T, got.data(), ldy);
          k.gemm_packed(id, pk, rows, cols, half, n_panels, act.data(), T, got.data(), ldy);
          expect_same_bits(got, want, ldy);
          for (int64_t t = 0; t < T; ++t)
            for (int64_t r = rows; r < ldy; ++r)
              ASSERT_EQ(got[t * ldy + r], -1.0f) << "wrote past rows";
        }
      }
    }
  }
  // Float weights have no packed form (their panels would be F32, 4 bytes per weight).
  int64_t panel_rows = 0;
  for (TensorType type : {TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q5_0})
    EXPECT_EQ(k.gemm_panel_bytes(static_cast<uint32_t>(type), 512, &panel_rows), 0)
        << info(type).name;
}

// Through ops::matmul: a PackedMatrix gives the unpacked matmul's bits (threads split by panel),
// also for batch-invariant T = 1; matmul ignores it under another ISA or with REPRISE_PREFILL=f32
// (that path's own results), and types without a packed form give an empty one.
TEST_P(KernelTest, MatmulWithPackedMatrixEqualsUnpacked) {
  const Isa saved = active_isa();
  set_isa(GetParam());
  ThreadPool pool(2);
  const int64_t rows = 77, cols = 512;
  for (TensorType type : kIntPrefillTypes) {
    Weights w = make_weights(type, rows, cols, 55);
    TensorView view;
    view.name = "w";
    view.type = type;
    view.shape = {rows, cols};
    view.data = std::span<const std::byte>(w.data);
    const PackedMatrix pm = PackedMatrix::pack(view, pool);
    if (!table(GetParam())->gemm_packed) {
      EXPECT_TRUE(pm.empty());
      continue;
    }
    ASSERT_FALSE(pm.empty()) << info(type).name;
    EXPECT_EQ(pm.isa(), GetParam());
    EXPECT_EQ(pm.bytes(), PackedMatrix::packed_bytes(view));
    EXPECT_EQ(pm.bytes() % 64, 0u);
    EXPECT_TRUE(pm.usable_for(view));
    for (int64_t T : {1, 4, 13, 67}) {
      SCOPED_TRACE(fmt::format("{} T {}", info(type).name, T));
      const bool inv = T < kGemmMinTokens;
      auto x = randn(T * cols, 3 + static_cast<uint32_t>(T));
      std::vector<float> want(T * rows), got(T * rows);
      matmul(view, x.data(), T, want.data(), pool, inv);
      matmul(view, x.data(), T, got.data(), pool, inv, &pm);
      expect_same_bits(got, want, rows);
      // Under the F32-activation prefill the packed form is not used.
      set_gemm_int8(false);
      EXPECT_FALSE(pm.usable_for(view));
      matmul(view, x.data(), T, want.data(), pool, inv);
      matmul(view, x.data(), T, got.data(), pool, inv, &pm);
      set_gemm_int8(true);
      expect_same_bits(got, want, rows);
    }
    // Another ISA (scalar: always there) runs its own unpacked path.
    set_isa(Isa::Scalar);
    EXPECT_FALSE(pm.usable_for(view));
    EXPECT_TRUE(PackedMatrix::pack(view, pool).empty());
    auto x = randn(13 * cols, 4);
    std::vector<float> want(13 * rows), got(13 * rows);
    matmul(view, x.data(), 13, want.data(), pool);
    matmul(view, x.data(), 13, got.data(), pool, false, &pm);
    expect_same_bits(got, want, rows);
    set_isa(GetParam());
    // A view of other bytes (a different matrix) is not matched.
    Weights other = make_weights(type, rows, cols, 56);
    TensorView ov = view;
    ov.data = std::span<const std::byte>(other.data);
    EXPECT_FALSE(pm.usable_for(ov));
  }
  TensorView f16;
  std::vector<std::byte> bytes(rows * cols * 2);
  f16.type = TensorType::F16;
  f16.shape = {rows, cols};
  f16.data = std::span<const std::byte>(bytes);
  EXPECT_TRUE(PackedMatrix::pack(f16, pool).empty());
  EXPECT_EQ(PackedMatrix::packed_bytes(f16), 0u);
  set_isa(saved);
}

// ops::matmul picks matvec or gemm by T and splits rows across threads; both paths and the
// thread split must agree with the scalar ISA's matmul.
TEST_P(KernelTest, MatmulThroughDispatchMatchesScalar) {
  const Isa saved = active_isa();
  ThreadPool pool(2);
  const int64_t rows = 53, cols = 512;
  for (TensorType type : {TensorType::F16, TensorType::Q8_0, TensorType::Q5_1, TensorType::Q4_K,
                          TensorType::Q3_K, TensorType::Q6_K, TensorType::IQ4_XS}) {
    Weights w = make_weights(type, rows, cols, 31);
    TensorView view;
    view.name = "w";
    view.type = type;
    view.shape = {rows, cols};
    view.data = std::span<const std::byte>(w.data);
    for (int64_t T : {1, 2, 5, 13}) {
      SCOPED_TRACE(std::string(info(type).name) + " T=" + std::to_string(T));
      auto x = randn(T * cols, 7 + static_cast<uint32_t>(T));
      std::vector<float> ref(T * rows), got(T * rows);
      set_isa(Isa::Scalar);
      matmul(view, x.data(), T, ref.data(), pool);
      set_isa(GetParam());
      matmul(view, x.data(), T, got.data(), pool);
      const bool q8 = T < kGemmMinTokens
                          ? matvec_activation_precision(GetParam(), type) == ActPrecision::Q8
                          : gemm_activation_precision(GetParam(), type) == ActPrecision::Q8;
      for (int64_t t = 0; t < T; ++t) {
        float xmax = 0;
        for (int64_t c = 0; c < cols; ++c) xmax = std::max(xmax, std::fabs(x[t * cols + c]));
        for (int64_t r = 0; r < rows; ++r) {
          double l1_prod = 0, l1_w = 0;
          for (int64_t c = 0; c < cols; ++c) {
            l1_prod += std::fabs(w.deq[r * cols + c] * x[t * cols + c]);
            l1_w += std::fabs(w.deq[r * cols + c]);
          }
          const double tol = 1e-5 * l1_prod + (q8 ? l1_w * xmax / 254.0 : 0.0);
          EXPECT_NEAR(got[t * rows + r], ref[t * rows + r], tol);
        }
      }
    }
  }
  set_isa(saved);
}

TEST_P(KernelTest, ActivationQuantizationRoundTrips) {
  const IsaKernels& k = *table(GetParam());
  auto x = randn(512, 9);
  x[3] = 0;
  for (int i = 256; i < 288; ++i) x[i] = 0;  // an all-zero block must get scale 0, not nan
  std::vector<ActQ8_32> a32(512 / 32);
  k.quantize_act(ActFormat::Q8_32, x.data(), 512, a32.data());
  for (int b = 0; b < 16; ++b) {
    float amax = 0;
    int32_t sum = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * b + j]));
    for (int j = 0; j < 32; ++j) {
      EXPECT_NEAR(a32[b].d * a32[b].q[j], x[32 * b + j], amax / 254 * 1.0001 + 1e-7);
      sum += a32[b].q[j];
    }
    EXPECT_EQ(a32[b].sum, sum);
  }
  // The pair layout holds the same numbers as Q8_32, rearranged; 480 = 15 blocks leaves the last
  // pair half empty.
  std::vector<ActQ8_32x2> a64(8);
  std::memset(a64.data(), 0x55, a64.size() * sizeof(ActQ8_32x2));
  k.quantize_act(ActFormat::Q8_32x2, x.data(), 480, a64.data());
  for (int b = 0; b < 16; ++b) {
    const ActQ8_32x2& p = a64[b / 2];
    const int h = b % 2;
    const ActQ8_32 one = b < 15 ? a32[b] : ActQ8_32{};
    for (int j = 0; j < 16; ++j) {
      EXPECT_EQ(p.lo[16 * h + j], one.q[j]) << "block " << b;
      EXPECT_EQ(p.hi[16 * h + j], one.q[16 + j]) << "block " << b;
    }
    for (int l = 0; l < 4; ++l) {
      EXPECT_EQ(p.d[4 * h + l], one.d) << "block " << b;
      EXPECT_EQ(p.off[4 * h + l], l == 0 ? 8 * one.sum : 0) << "block " << b;
    }
  }
  std::vector<ActQ8_256> a256(2);
  k.quantize_act(ActFormat::Q8_256, x.data(), 512, a256.data());
  for (int b = 0; b < 2; ++b) {
    float amax = 0;
    for (int j = 0; j < 256; ++j) amax = std::max(amax, std::fabs(x[256 * b + j]));
    for (int g = 0; g < 16; ++g) {
      int32_t sum = 0;
      for (int j = 0; j < 16; ++j) {
        const int e = 16 * g + j;
        EXPECT_NEAR(a256[b].d * a256[b].q[e], x[256 * b + e], amax / 254 * 1.0001 + 1e-7);
        sum += a256[b].q[e];
      }
      EXPECT_EQ(a256[b].bsum[g], sum);
    }
  }
}

TEST_P(KernelTest, AttentionHelpersMatchScalar) {
  const IsaKernels& k = *table(GetParam());
  const IsaKernels& s = *scalar_kernels();
  for (KvElem elem : {KvElem::F32, KvElem::F16}) {
    for (int64_t hd : {8, 12, 64, 128}) {
      for (int64_t n : {1, 3, 4, 9, 37}) {
        SCOPED_TRACE("elem " + std::to_string(static_cast<int>(elem)) + " hd " +
                     std::to_string(hd) + " n " + std::to_string(n));
        const int64_t stride = hd * 3;  // rows of other heads in between, as in the cache
        auto kf = randn(n * stride, 1), vf = randn(n * stride, 2), q = randn(hd, 3);
        std::vector<uint16_t> kh(kf.size()), vh(vf.size());
        for (size_t i = 0; i < kf.size(); ++i) {
          kh[i] = fp32_to_fp16(kf[i]);
          vh[i] = fp32_to_fp16(vf[i]);
        }
        const void* kp = elem == KvElem::F16 ? static_cast<const void*>(kh.data()) : kf.data();
        const void* vp = elem == KvElem::F16 ? static_cast<const void*>(vh.data()) : vf.data();
        std::vector<float> sc_ref(n), sc(n);
        s.attn_scores(q.data(), kp, elem, stride, n, hd, 0.125f, sc_ref.data());
        k.attn_scores(q.data(), kp, elem, stride, n, hd, 0.125f, sc.data());
        for (int64_t j = 0; j < n; ++j) EXPECT_NEAR(sc[j], sc_ref[j], 1e-5 * hd * 0.125);
        // Softmax numerators: relative error of the exp approximation.
        const float sum_ref = s.softmax_exp(sc_ref.data(), n), sum = k.softmax_exp(sc.data(), n);
        EXPECT_NEAR(sum, sum_ref, 1e-5 * sum_ref);
        for (int64_t j = 0; j < n; ++j) EXPECT_NEAR(sc[j], sc_ref[j], 1e-5 * sc_ref[j] + 1e-7);
        std::vector<float> out_ref(hd), out(hd);
        s.attn_values(sc_ref.data(), vp, elem, stride, n, hd, out_ref.data());
        k.attn_values(sc_ref.data(), vp, elem, stride, n, hd, out.data());
        for (int64_t i = 0; i < hd; ++i) EXPECT_NEAR(out[i], out_ref[i], 1e-5 * n * 4);
      }
    }
  }
}

// log-softmax normalisers over vocabulary-sized rows: the ISA's float exp summed in double must
// stay within 1e-6 of the scalar reference (double exp), at sizes that are and are not multiples
// of the vector width, with a spread of logits like a real model's.
TEST_P(KernelTest, ExpSumMatchesScalar) {
  const IsaKernels& k = *table(GetParam());
  const IsaKernels& s = *scalar_kernels();
  for (int64_t n : {1, 7, 8, 13, 1000, 151936}) {
    SCOPED_TRACE("n " + std::to_string(n));
    auto x = randn(n, 9, 4.0f);
    x[n / 2] = 25.0f;  // one confident token, far above the rest
    float m_ref = 0, m = 0;
    double sum_ref = 0, sum = 0;
    s.exp_sum(x.data(), n, &m_ref, &sum_ref);
    k.exp_sum(x.data(), n, &m, &sum);
    EXPECT_EQ(m, 25.0f);
    EXPECT_EQ(m, m_ref);
    EXPECT_NEAR(std::log(sum), std::log(sum_ref), 1e-6);
  }
  // The scalar reference itself: log(sum(exp)) of known values.
  const std::vector<float> v = {0.0f, std::log(3.0f)};
  float m = 0;
  double sum = 0;
  s.exp_sum(v.data(), 2, &m, &sum);
  EXPECT_NEAR(m + std::log(sum), std::log(4.0), 1e-7);
}

// kernels::log_sum_exp on every ISA: known values, and infinite maxima passed through (the
// sampler's logprobs see -inf logits once tokens are banned).
TEST_P(KernelTest, LogSumExpOfKnownAndInfiniteRows) {
  const Isa saved = active_isa();
  set_isa(GetParam());
  const float inf = std::numeric_limits<float>::infinity();
  const std::vector<float> known = {0.0f, std::log(3.0f)}, banned = {-inf, -inf, -inf},
                           one_inf = {1.0f, inf, 2.0f};
  EXPECT_NEAR(log_sum_exp(known), std::log(4.0), 1e-6);
  EXPECT_EQ(log_sum_exp(banned), -inf);
  EXPECT_EQ(log_sum_exp(one_inf), inf);
  set_isa(saved);
}

TEST_P(KernelTest, SwigluMatchesScalar) {
  const IsaKernels& k = *table(GetParam());
  auto g = randn(203, 4, 6.0f), u = randn(203, 5);
  g[0] = -100;  // exp(-g) overflows in the naive formula; silu is ~0 there
  g[1] = 100;
  auto ref = g;
  scalar_kernels()->swiglu(ref.data(), u.data(), 203);
  k.swiglu(g.data(), u.data(), 203);
  for (int i = 0; i < 203; ++i) EXPECT_NEAR(g[i], ref[i], 1e-5 * std::fabs(ref[i]) + 1e-6);
}

INSTANTIATE_TEST_SUITE_P(Isas, KernelTest, ::testing::ValuesIn(simd_isas()),
                         [](const auto& info) { return std::string(isa_name(info.param)); });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(KernelTest);

TEST(Dispatch, NamesAndSupport) {
  for (Isa i : kAllIsas) EXPECT_EQ(isa_from_name(isa_name(i)), i);
  EXPECT_FALSE(isa_from_name("sse9"));
  auto s = supported_isas();
  ASSERT_FALSE(s.empty());
  EXPECT_EQ(s.front(), Isa::Scalar);
  EXPECT_TRUE(isa_supported(active_isa()));
  for (Isa i : kAllIsas) {
    if (!isa_supported(i)) {
      EXPECT_THROW(set_isa(i), Error);
    }
  }
  EXPECT_EQ(matvec_activation_precision(Isa::Scalar, TensorType::Q4_K), ActPrecision::F32);
  // Prefill: integer only where the ISA has gemm_rounded for the type, and never with f32 forced.
  const bool saved = gemm_int8_enabled();
  for (bool on : {true, false}) {
    set_gemm_int8(on);
    EXPECT_EQ(gemm_activation_precision(Isa::Scalar, TensorType::Q8_0), ActPrecision::F32);
    for (Isa isa : {Isa::Avx2, Isa::AvxVnni, Isa::Avx512}) {
      if (!isa_supported(isa)) continue;
      SCOPED_TRACE(isa_name(isa));
      for (TensorType t : {TensorType::Q8_0, TensorType::Q4_0, TensorType::Q4_K, TensorType::Q5_K,
                           TensorType::Q6_K})
        EXPECT_EQ(gemm_activation_precision(isa, t), on ? ActPrecision::Q8 : ActPrecision::F32);
      // Not covered: F32 activations (the float types, and the nibble types without a kernel).
      for (TensorType t : {TensorType::F32, TensorType::F16, TensorType::BF16, TensorType::Q5_1})
        EXPECT_EQ(gemm_activation_precision(isa, t), ActPrecision::F32);
    }
  }
  set_gemm_int8(saved);
}

// The kernel report (`reprise bench --kernels`, docs/performance.md) lists every type reprise
// computes with, and says what the tables hold: AVX-512 has its own decode kernel for Q4_0 only,
// its own integer prefill for the five covered types and F32-activation prefill for float
// weights; AVX-VNNI adds only integer prefill; everything else is AVX2's.
TEST(Dispatch, KernelTableListsEveryTypeAndTheOwningIsa) {
  const bool saved = gemm_int8_enabled();
  set_gemm_int8(true);
  for (Isa isa : supported_isas()) {
    SCOPED_TRACE(isa_name(isa));
    const std::string table = kernel_table_markdown(isa);
    size_t n = 0;
    for (uint32_t id = 0; id < 64; ++id)
      if (auto ti = tensor_type_info(id); ti && ti->computable) {
        ++n;
        EXPECT_NE(table.find(fmt::format("| {} |", ti->name)), std::string::npos) << ti->name;
      }
    EXPECT_EQ(kernel_choices(isa).size(), n);
    EXPECT_GE(n, 15u);
  }
  auto choice = [](Isa isa, TensorType t) {
    for (const KernelChoice& c : kernel_choices(isa))
      if (c.type == t) return c;
    ADD_FAILURE() << "no row for " << info(t).name;
    return KernelChoice{};
  };
  const KernelChoice scalar = choice(Isa::Scalar, TensorType::Q8_0);
  EXPECT_EQ(scalar.decode_isa, Isa::Scalar);
  EXPECT_EQ(scalar.decode_act, "f32");
  EXPECT_FALSE(scalar.prefill_int);
  if (isa_supported(Isa::Avx512)) {
    EXPECT_EQ(choice(Isa::Avx512, TensorType::Q4_0).decode_isa, Isa::Avx512);
    EXPECT_EQ(choice(Isa::Avx512, TensorType::Q4_0).decode_act, "q8 x32 paired");
    EXPECT_EQ(choice(Isa::Avx512, TensorType::Q8_0).decode_isa, Isa::Avx2);
    EXPECT_EQ(choice(Isa::Avx512, TensorType::Q4_K).decode_act, "q8 x256");
    const KernelChoice q6 = choice(Isa::Avx512, TensorType::Q6_K);
    EXPECT_EQ(q6.prefill_isa, Isa::Avx512);
    EXPECT_TRUE(q6.prefill_int);
    const KernelChoice f16 = choice(Isa::Avx512, TensorType::F16);
    EXPECT_EQ(f16.prefill_isa, Isa::Avx512);
    EXPECT_FALSE(f16.prefill_int);
    const KernelChoice q5_1 = choice(Isa::Avx512, TensorType::Q5_1);
    EXPECT_EQ(q5_1.prefill_isa, Isa::Avx2);
    EXPECT_FALSE(q5_1.prefill_int);
  }
  if (isa_supported(Isa::AvxVnni)) {
    const KernelChoice q8 = choice(Isa::AvxVnni, TensorType::Q8_0);
    EXPECT_EQ(q8.decode_isa, Isa::Avx2);
    EXPECT_EQ(q8.decode_act, "q8 x32");
    EXPECT_EQ(q8.prefill_isa, Isa::AvxVnni);
    EXPECT_TRUE(q8.prefill_int);
    EXPECT_EQ(choice(Isa::AvxVnni, TensorType::F16).prefill_isa, Isa::Avx2);
  }
  if (isa_supported(Isa::Avx2)) {
    set_gemm_int8(false);  // REPRISE_PREFILL=f32: no integer prefill anywhere
    for (Isa isa : supported_isas())
      for (const KernelChoice& c : kernel_choices(isa)) EXPECT_FALSE(c.prefill_int);
    if (isa_supported(Isa::Avx512)) {
      EXPECT_EQ(choice(Isa::Avx512, TensorType::Q8_0).prefill_isa, Isa::Avx2);
    }
  }
  set_gemm_int8(saved);
}

// docs/performance.md quotes `reprise bench --kernels --isa X`; wherever this CPU runs X, the
// quoted table must be what the dispatch tables say now (regenerate it when this fails).
TEST(Dispatch, PerformanceDocQuotesTheCurrentKernelTables) {
  std::ifstream in(std::string(REPRISE_SOURCE_DIR) + "/docs/performance.md");
  ASSERT_TRUE(in);
  std::stringstream ss;
  ss << in.rdbuf();
  const std::string doc = ss.str();
  const bool saved = gemm_int8_enabled();
  set_gemm_int8(true);
  int checked = 0;
  for (Isa isa : supported_isas()) {
    const size_t at = doc.find(fmt::format("kernels for --isa {} (", isa_name(isa)));
    if (at == std::string::npos) continue;
    std::string want = kernel_table_markdown(isa);
    want = want.substr(want.find("| type |"));  // the table, not the CPU line above it
    const size_t table = doc.find("| type |", at);
    ASSERT_NE(table, std::string::npos) << isa_name(isa);
    EXPECT_EQ(doc.substr(table, want.size()), want)
        << "docs/performance.md: regenerate with reprise bench --kernels --isa " << isa_name(isa);
    ++checked;
  }
  set_gemm_int8(saved);
  if (isa_supported(Isa::Avx2)) {
    EXPECT_GT(checked, 0) << "no table quoted for a supported ISA";
  }
}

}  // namespace
}  // namespace reprise::kernels
