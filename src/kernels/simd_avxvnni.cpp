// AVX-VNNI kernels (AVX2 + the VEX-encoded vpdpbusd: Intel Alder Lake and later, AMD Zen 5).
//
// Compiled with -mavx2 -mfma -mf16c -mavxvnni (CMakeLists.txt) and only ever called after
// dispatch.cpp has checked the CPU. The table is the AVX2 one with integer prefill built from the
// same source (gemm_int_avx2.inc) with vpdpbusd in place of vpmaddubsw + vpmaddwd: one
// instruction per four-byte dot product instead of three, and no int16 step, so Q8_0 takes the
// unsigned-shift form AVX-512 uses. Everything except the table getter is file-local.
#include <cstdint>
#include <cstring>

#include "kernels/isa_kernels.h"
#include "kernels/quant_blocks.h"

#if defined(__AVX2__) && defined(__FMA__) && defined(__F16C__) && defined(__AVXVNNI__)
#include <immintrin.h>

namespace reprise::kernels {
namespace {

#include "kernels/gemm_int_avx2.inc"

}  // namespace

const IsaKernels* avxvnni_kernels() {
  static const IsaKernels* const table = []() -> const IsaKernels* {
    static IsaKernels k;
    const IsaKernels* base = avx2_kernels();
    if (!base) return nullptr;
    k = *base;
    k.gemm_act_row_bytes = int_prefill::gemm_act_row_bytes;
    k.gemm_round_act = int_prefill::gemm_round_act;
    k.gemm_rounded = int_prefill::gemm_rounded;
    k.gemm_panel_bytes = int_prefill::gemm_panel_bytes;
    k.gemm_pack_panels = int_prefill::gemm_pack_panels;
    k.gemm_packed = int_prefill::gemm_packed;
    return &k;
  }();
  return table;
}

}  // namespace reprise::kernels

#else  // not built with the AVX-VNNI flags (see CMakeLists.txt): no table

namespace reprise::kernels {
const IsaKernels* avxvnni_kernels() {
  return nullptr;
}
}  // namespace reprise::kernels

#endif
