// Tensor element types as numbered by ggml (the GGUF `type` field), with their block geometry.
//
// A row of `n` elements of a block type occupies n / block_elems blocks of block_bytes each;
// n must be a multiple of block_elems. Non-block types have block_elems == 1.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace reprise {

enum class TensorType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q8_1 = 9,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  Q8_K = 15,
  IQ2_XXS = 16,
  IQ2_XS = 17,
  IQ3_XXS = 18,
  IQ1_S = 19,
  IQ4_NL = 20,
  IQ3_S = 21,
  IQ2_S = 22,
  IQ4_XS = 23,
  I8 = 24,
  I16 = 25,
  I32 = 26,
  I64 = 27,
  F64 = 28,
  IQ1_M = 29,
  BF16 = 30,
  TQ1_0 = 34,
  TQ2_0 = 35,
  MXFP4 = 39,
};

struct TensorTypeInfo {
  std::string_view name;  // as llama.cpp prints it, e.g. "Q4_K"
  uint32_t block_elems;   // elements per block
  uint32_t block_bytes;   // bytes per block
  bool computable;        // reprise has dequantize + dot kernels for it
};

// Geometry of a type id read from a file; nullopt for ids reprise does not know.
std::optional<TensorTypeInfo> tensor_type_info(uint32_t type_id);

// Geometry of a known type (never fails).
const TensorTypeInfo& info(TensorType t);

// Parses "q8_0", "Q4_K", "bf16"... (case-insensitive); nullopt if unknown.
std::optional<TensorType> tensor_type_from_name(std::string_view name);

// llama.cpp's general.file_type code for a file whose matrices are mostly `t` (informational:
// loaders read each tensor's own type). Fixed K-quant types give the "S" variant, which is mostly
// that type. nullopt for types llama.cpp has no such code for.
std::optional<uint32_t> llama_file_type(TensorType t);
inline constexpr uint32_t kLlamaFileTypeQ4_K_M = 15;

// llama.cpp's label for a general.file_type code ("Q4_K_M", "Q3_K_L", "IQ4_XS", ...; the ones
// llama-quantize writes), nullopt for codes it does not define.
std::optional<std::string_view> llama_file_type_name(uint32_t code);

// Bytes taken by one row of `n` elements; n must be a multiple of block_elems.
inline uint64_t row_bytes(TensorType t, uint64_t n) {
  const auto& i = info(t);
  return n / i.block_elems * i.block_bytes;
}

}  // namespace reprise
