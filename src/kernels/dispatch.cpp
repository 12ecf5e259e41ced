#include "kernels/dispatch.h"

#include <fmt/format.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <mutex>

#include "kernels/isa_kernels.h"
#include "util/error.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define REPRISE_X86 1
#endif

namespace reprise::kernels {
namespace {

struct CpuFeatures {
  bool avx2 = false, fma = false, f16c = false;
  bool avx512 = false;    // F, BW, VL, DQ with OS support for the ZMM state
  bool avx_vnni = false;  // the VEX-encoded vpdpbusd (needs only the YMM state)
  bool avx512_vnni = false, avx512_bf16 = false;
  bool amx = false;  // tile + int8 + bf16, OS support for the tile state
};

CpuFeatures detect() {
  CpuFeatures f;
#ifdef REPRISE_X86
  unsigned a, b, c, d;
  if (!__get_cpuid(1, &a, &b, &c, &d)) return f;
  const bool osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
  f.fma = (c >> 12) & 1;
  f.f16c = (c >> 29) & 1;
  uint64_t xcr0 = 0;
  if (osxsave) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    xcr0 = (static_cast<uint64_t>(hi) << 32) | lo;
  }
  const bool os_ymm = (xcr0 & 0x6) == 0x6, os_zmm = (xcr0 & 0xE6) == 0xE6;
  const bool os_tiles = (xcr0 & 0x60000) == 0x60000;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return f;
  f.avx2 = avx && os_ymm && ((b >> 5) & 1) && f.fma && f.f16c;
  f.avx512 = os_zmm && ((b >> 16) & 1) && ((b >> 17) & 1) && ((b >> 30) & 1) && ((b >> 31) & 1);
  f.avx512_vnni = f.avx512 && ((c >> 11) & 1);
  f.amx = os_tiles && ((d >> 22) & 1) && ((d >> 24) & 1) && ((d >> 25) & 1);
  if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) {
    f.avx_vnni = f.avx2 && ((a >> 4) & 1);
    f.avx512_bf16 = f.avx512 && ((a >> 5) & 1);
  }
#endif
  return f;
}

const CpuFeatures& cpu() {
  static const CpuFeatures f = detect();
  return f;
}

const IsaKernels* table_for(Isa isa) {
  switch (isa) {
    case Isa::Scalar:
      return scalar_kernels();
    case Isa::Avx2:
      return cpu().avx2 ? avx2_kernels() : nullptr;
    case Isa::AvxVnni:
      return cpu().avx_vnni ? avxvnni_kernels() : nullptr;
    // The AVX-512 table is the AVX2 one with AVX-512 VNNI kernels in some places.
    case Isa::Avx512:
      return cpu().avx2 && cpu().avx512_vnni ? avx512_kernels() : nullptr;
    // AMX kernels are not implemented (no machine to test them on; see docs/performance.md).
    case Isa::Amx:
      return nullptr;
  }
  return nullptr;
}

Isa resolve_initial() {
  if (const char* env = std::getenv("REPRISE_ISA"); env && *env) {
    auto isa = isa_from_name(env);
    if (!isa)
      throw Error(
          fmt::format("REPRISE_ISA={}: unknown ISA (scalar, avx2, avxvnni, avx512, amx)", env));
    if (!isa_supported(*isa))
      throw Error(fmt::format("REPRISE_ISA={}: not supported on this CPU or build (supported: {})",
                              env, [] {
                                std::string s;
                                for (Isa i : supported_isas())
                                  s += (s.empty() ? "" : ", ") + std::string(isa_name(i));
                                return s;
                              }()));
    return *isa;
  }
  return supported_isas().back();
}

std::once_flag g_once;
std::atomic<int> g_isa{-1};

}  // namespace

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::Scalar:
      return "scalar";
    case Isa::Avx2:
      return "avx2";
    case Isa::AvxVnni:
      return "avxvnni";
    case Isa::Avx512:
      return "avx512";
    case Isa::Amx:
      return "amx";
  }
  return "?";
}

std::optional<Isa> isa_from_name(std::string_view name) {
  for (Isa i : kAllIsas)
    if (isa_name(i) == name) return i;
  return std::nullopt;
}

bool isa_supported(Isa isa) {
  return table_for(isa) != nullptr;
}

std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa i : kAllIsas)
    if (isa_supported(i)) out.push_back(i);
  return out;
}

std::string cpu_features() {
  const CpuFeatures& f = cpu();
  std::string s;
  auto add = [&](bool on, const char* name) {
    if (!on) return;
    if (!s.empty()) s += ' ';  // not `" " + std::string`: GCC 12 -Wrestrict false positive
    s += name;
  };
  add(f.avx2, "avx2");
  add(f.fma, "fma");
  add(f.f16c, "f16c");
  add(f.avx_vnni, "avx_vnni");
  add(f.avx512, "avx512");
  add(f.avx512_vnni, "avx512_vnni");
  add(f.avx512_bf16, "avx512_bf16");
  add(f.amx, "amx");
  return s.empty() ? "none" : s;
}

Isa active_isa() {
  std::call_once(g_once, [] {
    int expected = -1;
    g_isa.compare_exchange_strong(expected, static_cast<int>(resolve_initial()));
  });
  return static_cast<Isa>(g_isa.load(std::memory_order_relaxed));
}

void set_isa(Isa isa) {
  if (!isa_supported(isa))
    throw Error(fmt::format("ISA {} is not supported on this CPU or build", isa_name(isa)));
  std::call_once(g_once, [] {});  // an explicit choice wins over REPRISE_ISA
  g_isa.store(static_cast<int>(isa), std::memory_order_relaxed);
}

ActPrecision matvec_activation_precision(Isa isa, TensorType type) {
  const IsaKernels* k = table_for(isa);
  if (!k) return ActPrecision::F32;
  return k->matvec_act(static_cast<uint32_t>(type)) == ActFormat::F32 ? ActPrecision::F32
                                                                      : ActPrecision::Q8;
}

// -1: REPRISE_PREFILL not read yet; else 0 (f32) or 1 (q8).
std::atomic<int> g_gemm_int8{-1};

bool gemm_int8_enabled() {
  if (const int v = g_gemm_int8.load(std::memory_order_relaxed); v >= 0) return v != 0;
  const char* env = std::getenv("REPRISE_PREFILL");
  int on = 1;
  if (env && *env && std::string_view(env) != "q8") {
    if (std::string_view(env) != "f32")
      throw Error(fmt::format("REPRISE_PREFILL={}: unknown prefill precision (q8, f32)", env));
    on = 0;
  }
  int expected = -1;
  g_gemm_int8.compare_exchange_strong(expected, on);  // a set_gemm_int8() in between wins
  return g_gemm_int8.load(std::memory_order_relaxed) != 0;
}

void set_gemm_int8(bool on) {
  g_gemm_int8.store(on ? 1 : 0, std::memory_order_relaxed);
}

ActPrecision gemm_activation_precision(Isa isa, TensorType type) {
  const IsaKernels* k = table_for(isa);
  if (!k || !k->gemm_act_row_bytes || !gemm_int8_enabled()) return ActPrecision::F32;
  if (k->gemm_act_row_bytes(static_cast<uint32_t>(type), 256) == 0) return ActPrecision::F32;
  // gemm_rounded's encodings (gemm_int_avx2.inc, simd_avx512.cpp): F32 activations as they are
  // for float weights, 8-bit ones for the quantized types.
  return info(type).block_elems == 1 ? ActPrecision::F32 : ActPrecision::Q8;
}

std::vector<KernelChoice> kernel_choices(Isa isa) {
  std::vector<KernelChoice> out;
  const IsaKernels* k = table_for(isa);
  if (!k) return out;
  // AVX-VNNI and AVX-512 start from a copy of the AVX2 table: an entry equal to AVX2's is AVX2's.
  const IsaKernels* base = isa == Isa::AvxVnni || isa == Isa::Avx512 ? avx2_kernels() : nullptr;
  for (uint32_t id = 0; id < 64; ++id) {
    const auto ti = tensor_type_info(id);
    if (!ti || !ti->computable) continue;
    const auto type = static_cast<TensorType>(id);
    KernelChoice c{type, isa, "f32", isa, ActPrecision::F32, false};
    if (base && (k->matvec == base->matvec || (k->matvec_own && !k->matvec_own(id))))
      c.decode_isa = Isa::Avx2;
    switch (k->matvec_act(id)) {
      case ActFormat::F32:
        break;
      case ActFormat::Q8_32:
        c.decode_act = "q8 x32";
        break;
      case ActFormat::Q8_32x2:
        c.decode_act = "q8 x32 paired";
        break;
      case ActFormat::Q8_256:
        c.decode_act = "q8 x256";
        break;
    }
    // ops::matmul's choice: gemm_rounded where it takes the type (and REPRISE_PREFILL allows),
    // else the F32-activation gemm.
    const bool rounded =
        gemm_int8_enabled() && k->gemm_rounded && k->gemm_act_row_bytes(id, 256) > 0;
    if (base && (rounded ? k->gemm_rounded == base->gemm_rounded : k->gemm == base->gemm))
      c.prefill_isa = Isa::Avx2;
    c.prefill_act = gemm_activation_precision(isa, type);
    c.prefill_int = rounded && c.prefill_act == ActPrecision::Q8;
    out.push_back(c);
  }
  return out;
}

std::string kernel_table_markdown(Isa isa) {
  std::string s = fmt::format(
      "kernels for --isa {} (cpu: {}; REPRISE_PREFILL={})\n\n"
      "| type | decode kernel | decode activations | prefill kernel | prefill arithmetic |\n"
      "| --- | --- | --- | --- | --- |\n",
      isa_name(isa), cpu_features(), gemm_int8_enabled() ? "q8" : "f32");
  for (const KernelChoice& c : kernel_choices(isa))
    s += fmt::format("| {} | {} | {} | {} | {} |\n", info(c.type).name, isa_name(c.decode_isa),
                     c.decode_act, isa_name(c.prefill_isa),
                     c.prefill_int ? "int8 x int8 (q8 x32 activations)"
                                   : "f32 FMA (f32 activations, weights dequantized)");
  return s;
}

int64_t gemm_scratch_floats(int64_t cols) {
  // gemm: 16 x 256 floats of dequantized rows and their transposed panel, or one row;
  // gemm_rounded: a 32-row panel of 8-bit quants with per-block scales, or of F32
  // (simd_avx512.cpp).
  return std::max({cols, int64_t{2 * 16 * 256}, 33 * cols + 16}) + 64;
}

const IsaKernels& active_kernels() {
  return *table_for(active_isa());
}

}  // namespace reprise::kernels
