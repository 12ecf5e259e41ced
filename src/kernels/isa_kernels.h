// The table of kernels one instruction set provides (internal to kernels/ and engine/).
//
// Each ISA's kernels live in their own translation unit compiled with that ISA's target flags
// (e.g. simd_avx2.cpp with -mavx2 -mfma -mf16c). This header is included there, so it holds only
// declarations and plain types: an inline function defined in a header would be compiled with
// those flags inside the ISA file, and the linker may keep that copy for every caller, which
// would fault on a CPU without the ISA. For the same reason the ISA files keep all their helpers
// in an anonymous namespace and include no standard headers beyond <cstdint>/<cstring>.
#pragma once

#include <cstdint>

namespace reprise::kernels {

// Encodings of one activation row handed to matvec kernels.
enum class ActFormat : int {
  F32 = 0,      // float[n]
  Q8_32 = 1,    // ActQ8_32[n / 32]
  Q8_256 = 2,   // ActQ8_256[n / 256]
  Q8_32x2 = 3,  // ActQ8_32x2[ceil(n / 64)]
};

// 32 activations as x[j] ~= d * q[j], with q = round(x / d), d = max|x| / 127; `sum` = sum of q.
// Used with Q8_0 weights (whose blocks are 32 wide).
struct ActQ8_32 {
  float d;
  int32_t sum;
  int8_t q[32];
};

// 256 activations with one scale (as ActQ8_32), plus the sums of q over each 16-element group,
// which the K types need for their per-sub-block minimums (Q4_K, Q5_K) and offset (Q6_K).
struct ActQ8_256 {
  float d;
  int16_t bsum[16];
  int8_t q[256];
};

// 64 activations (32-blocks b and b + 1, each quantized as ActQ8_32) laid out for the nibble
// types (Q4_0, Q4_1, Q5_0, Q5_1, IQ4_NL), whose 16 bytes per block hold elements j (low nibble)
// and j + 16 (high nibble): one 256-bit register of two blocks' nibbles then meets `lo` and `hi`
// directly. Lanes 0..3 of `off` and `d` belong to block b, lanes 4..7 to b + 1. With an odd
// number of blocks the last pair's second half is zero.
struct ActQ8_32x2 {
  int8_t lo[32];   // x_b[0..16), x_b+1[0..16)
  int8_t hi[32];   // x_b[16..32), x_b+1[16..32)
  int32_t off[8];  // 8 * sum(q_b), 0, 0, 0, 8 * sum(q_b+1), 0, 0, 0: Q4_0's "- 8" per block,
                   // and the block sums the other types' offsets need
  float d[8];      // d_b x 4, d_b+1 x 4
};

static_assert(sizeof(ActQ8_32) == 40);
static_assert(sizeof(ActQ8_32x2) == 128);
static_assert(sizeof(ActQ8_256) == 292);

// KV cache element encodings the attention kernels read.
enum class KvElem : int { F32 = 0, F16 = 1 };

struct IsaKernels {
  // Activation format matvec() needs for weights of ggml type id `type`.
  ActFormat (*matvec_act)(uint32_t type);
  // Encodes x[0..n) into `out` (n a multiple of the format's block width).
  void (*quantize_act)(ActFormat format, const float* x, int64_t n, void* out);

  // Decode: y[r] = sum_c W[r, c] * x[c] for r < rows. Row r of W is `cols` elements of ggml
  // type `type` at w + r * stride (any alignment); act is x in matvec_act(type) encoding.
  void (*matvec)(uint32_t type, const void* w, uint64_t stride, int64_t rows, int64_t cols,
                 const void* act, float* y);

  // Prefill: y[t * ldy + r] = sum_c W[r, c] * x[t * cols + c] for r < rows, t < T, with F32
  // activations x [T, cols]. scratch holds gemm_scratch_floats(cols) floats.
  void (*gemm)(uint32_t type, const void* w, uint64_t stride, int64_t rows, int64_t cols,
               const float* x, int64_t T, float* y, int64_t ldy, float* scratch);

  // Attention over one head: keys/values are n rows of hd elements at k + j * stride (stride in
  // elements of `elem`). scores[j] = scale * (q . k_j). Returns nothing.
  void (*attn_scores)(const float* q, const void* k, KvElem elem, int64_t stride, int64_t n,
                      int64_t hd, float scale, float* scores);
  // s[j] = exp(s[j] - max_j s[j]) in place; returns the sum of the new values.
  float (*softmax_exp)(float* s, int64_t n);
  // out[i] = sum_j p[j] * v_j[i], i < hd (overwrites out).
  void (*attn_values)(const float* p, const void* v, KvElem elem, int64_t stride, int64_t n,
                      int64_t hd, float* out);
  // Tiles of query rows (prefill), each key and value loaded once for several rows. Every
  // score and output element is formed by the same operations in the same order as the row
  // kernels above form it, so a row's results are bit for bit those of the row kernels, whatever
  // the tile (what batch-invariant prefill relies on).
  // s[r * lds + j] = scale * (q_r . k_j) for r < nq, j < n; q_r at q + r * ldq.
  void (*attn_scores_tile)(const float* q, int64_t ldq, int64_t nq, const void* k, KvElem elem,
                           int64_t stride, int64_t n, int64_t hd, float scale, float* s,
                           int64_t lds);
  // out[r * ldo + i] = sum_{begin[r] <= j < end[r]} p[r * ldp + j] * v_j[i] for r < nq, i < hd
  // (overwrites out; p and v are indexed by the same j).
  void (*attn_values_tile)(const float* p, int64_t ldp, int64_t nq, const int64_t* begin,
                           const int64_t* end, const void* v, KvElem elem, int64_t stride,
                           int64_t hd, float* out, int64_t ldo);

  // g[i] = silu(g[i]) * u[i]
  void (*swiglu)(float* g, const float* u, int64_t n);

  // For log-softmax over a vocabulary row: *max = max_j x[j] and *sum = sum_j exp(x[j] - *max),
  // accumulated in double (rows have ~10^5 terms). n >= 1.
  void (*exp_sum)(const float* x, int64_t n, float* max, double* sum);

  // Prefill on activations encoded once per matmul (8-bit for the quantized types it covers;
  // AVX-512 also takes float weights, with F32 activations as they are), where the ISA has it
  // (nullptr otherwise; last, so the tables that lack them need not list them):
  // gemm_act_row_bytes(type, cols) is the size of one token's activations in gemm_rounded's
  // encoding for weights of `type`, or 0 if gemm_rounded does not take `type`; gemm_round_act
  // encodes one token row x[0..cols) into that many bytes at `out`; gemm_rounded is gemm() with
  // `act` holding T such rows back to back.
  int64_t (*gemm_act_row_bytes)(uint32_t type, int64_t cols) = nullptr;
  void (*gemm_round_act)(uint32_t type, const float* x, int64_t cols, void* out) = nullptr;
  void (*gemm_rounded)(uint32_t type, const void* w, uint64_t stride, int64_t rows, int64_t cols,
                       const void* act, int64_t T, float* y, int64_t ldy, float* scratch) = nullptr;

  // gemm_rounded on weights unpacked once ahead of time (kernels::PackedMatrix, for a matrix that
  // many prefills multiply), where the ISA has it (nullptr otherwise: matmul unpacks per call).
  // The packed form is gemm_rounded's own panels, stored back to back, so the results are its
  // bits exactly. gemm_panel_bytes(type, cols, &panel_rows) is the size of one panel of
  // panel_rows rows (a multiple of 64 bytes), or 0 if the type has no packed form;
  // gemm_pack_panels writes panels [p0, p1) of the rows x cols matrix at w (row stride `stride`)
  // to packed + p * panel_bytes (rows past the matrix are zeros), with gemm_scratch_floats(cols)
  // floats of scratch; gemm_packed is gemm_rounded for the rows of panels [p0, p1): y[t * ldy + r]
  // for r in [p0 * panel_rows, min(rows, p1 * panel_rows)), with `packed` the first panel's start.
  int64_t (*gemm_panel_bytes)(uint32_t type, int64_t cols, int64_t* panel_rows) = nullptr;
  void (*gemm_pack_panels)(uint32_t type, const void* w, uint64_t stride, int64_t rows,
                           int64_t cols, int64_t p0, int64_t p1, void* packed,
                           float* scratch) = nullptr;
  void (*gemm_packed)(uint32_t type, const void* packed, int64_t rows, int64_t cols, int64_t p0,
                      int64_t p1, const void* act, int64_t T, float* y, int64_t ldy) = nullptr;

  // For a table built on another one (AVX-512 on AVX2): whether matvec runs this table's own
  // kernel for `type` (it forwards the other types to the base table's). nullptr: every type
  // matvec takes is its own. Read only to report which kernels run (kernel_choices()).
  bool (*matvec_own)(uint32_t type) = nullptr;
};

// Floats of per-thread scratch the gemm kernels (gemm and gemm_rounded) need for rows of `cols`
// elements.
int64_t gemm_scratch_floats(int64_t cols);
// Rows one gemm call should cover (a multiple of the kernels' row tile), for splitting work.
inline constexpr int64_t kGemmRowTile = 16;

// The active ISA's table (dispatch.cpp).
const IsaKernels& active_kernels();

// The tables (defined in the per-ISA files; nullptr where the ISA was not compiled in).
const IsaKernels* scalar_kernels();
const IsaKernels* avx2_kernels();
// The AVX2 table with AVX-VNNI integer prefill (vpdpbusd on 256-bit registers).
const IsaKernels* avxvnni_kernels();
// The AVX2 table with AVX-512 (F/BW/VL/DQ/VNNI) kernels in place of some entries.
const IsaKernels* avx512_kernels();

}  // namespace reprise::kernels
