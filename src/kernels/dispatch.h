// Run-time choice of the instruction set the kernels use.
//
// The fastest kernel set this CPU (and OS) supports is picked on first use; the environment
// variable REPRISE_ISA=scalar|avx2|avxvnni|avx512|amx forces one (an error if the CPU lacks it),
// and set_isa() switches at run time (tests run every supported ISA against the scalar reference).
// "scalar" is the portable reference path: F32 activations, dot products accumulated in double,
// bit-for-bit the numbers the golden tests were written against.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "format/tensor_type.h"

namespace reprise::kernels {

// In order of preference (the best supported one is the default). AvxVnni is the AVX2 set with
// AVX-VNNI integer prefill.
enum class Isa { Scalar, Avx2, AvxVnni, Avx512, Amx };
inline constexpr Isa kAllIsas[] = {Isa::Scalar, Isa::Avx2, Isa::AvxVnni, Isa::Avx512, Isa::Amx};

// "scalar", "avx2", "avxvnni", "avx512", "amx".
std::string_view isa_name(Isa isa);
std::optional<Isa> isa_from_name(std::string_view name);

// True when this CPU and OS can run `isa` and reprise has kernels for it.
bool isa_supported(Isa isa);
// Every supported ISA, scalar first.
std::vector<Isa> supported_isas();
// What the CPU reports, for logs: e.g. "avx2 fma f16c" (features reprise looks at).
std::string cpu_features();

// The ISA in use: REPRISE_ISA if set (throws Error if unknown or unsupported), else the best
// supported one. Resolved once; set_isa() overrides it for the whole process.
Isa active_isa();
// Throws Error if `isa` is not supported. Not thread-safe against running kernels: call it
// between forward passes.
void set_isa(Isa isa);

// How the active ISA's matrix-vector kernels (decode, T < gemm threshold) see activations for
// weights of `type`: F32 (exact up to float summation order), or quantized to 8 bits per value
// with one scale per 32 or 256 values (like llama.cpp's Q8_0 / Q8_K activations).
enum class ActPrecision { F32, Q8 };
ActPrecision matvec_activation_precision(Isa isa, TensorType type);
// The same for the matrix-matrix kernels (prefill chunks of at least kGemmMinTokens tokens):
// Q8 (one scale per 32 values) where the ISA has integer gemm kernels for `type` (AVX2, AVX-VNNI
// and AVX-512 VNNI: Q8_0, Q4_0, Q4_K, Q5_K, Q6_K) unless REPRISE_PREFILL=f32, else F32.
ActPrecision gemm_activation_precision(Isa isa, TensorType type);
// False when REPRISE_PREFILL=f32 (keep prefill on F32 activations, for checks); true when it is
// unset or "q8". Read once; any other value throws Error naming it.
bool gemm_int8_enabled();
// Overrides REPRISE_PREFILL for the whole process (true: "q8"). Like set_isa(), call it between
// forward passes.
void set_gemm_int8(bool on);

// Which kernels run for weights of one type under one ISA, read from that ISA's dispatch table
// (so a report of them cannot drift from the code): whose code runs decode (matrix-vector) and
// prefill (matrix-matrix), on which activations. Tables built on another ISA's forward what they
// do not cover, so e.g. most AVX-512 decode kernels are AVX2's.
struct KernelChoice {
  TensorType type;
  Isa decode_isa;
  std::string_view decode_act;  // "f32", "q8 x32", "q8 x32 paired", "q8 x256" (ActFormat)
  Isa prefill_isa;
  ActPrecision prefill_act;
  bool prefill_int;  // integer dot products (8-bit activations and weights), else F32 FMA
};
// Every type reprise computes with, in type id order; empty for an unsupported ISA.
std::vector<KernelChoice> kernel_choices(Isa isa);
// kernel_choices() as a Markdown table (`reprise bench --kernels`).
std::string kernel_table_markdown(Isa isa);

// Matmuls over fewer tokens than this run the matrix-vector kernels once per token.
inline constexpr int64_t kGemmMinTokens = 4;

}  // namespace reprise::kernels
