#include "format/tensor_type.h"

#include <array>
#include <cctype>
#include <string>
#include <utility>

namespace reprise {
namespace {

struct Entry {
  TensorType type;
  TensorTypeInfo info;
};

// Block sizes follow the GGUF specification's quantization table.
constexpr std::array kTypes = {
    Entry{TensorType::F32, {"F32", 1, 4, true}},
    Entry{TensorType::F16, {"F16", 1, 2, true}},
    Entry{TensorType::Q4_0, {"Q4_0", 32, 18, true}},
    Entry{TensorType::Q4_1, {"Q4_1", 32, 20, true}},
    Entry{TensorType::Q5_0, {"Q5_0", 32, 22, false}},
    Entry{TensorType::Q5_1, {"Q5_1", 32, 24, false}},
    Entry{TensorType::Q8_0, {"Q8_0", 32, 34, true}},
    Entry{TensorType::Q8_1, {"Q8_1", 32, 36, false}},
    Entry{TensorType::Q2_K, {"Q2_K", 256, 84, false}},
    Entry{TensorType::Q3_K, {"Q3_K", 256, 110, false}},
    Entry{TensorType::Q4_K, {"Q4_K", 256, 144, true}},
    Entry{TensorType::Q5_K, {"Q5_K", 256, 176, true}},
    Entry{TensorType::Q6_K, {"Q6_K", 256, 210, true}},
    Entry{TensorType::Q8_K, {"Q8_K", 256, 292, false}},
    // Types reprise reads by name only (so errors can name them) and cannot compute.
    Entry{TensorType::IQ2_XXS, {"IQ2_XXS", 256, 66, false}},
    Entry{TensorType::IQ2_XS, {"IQ2_XS", 256, 74, false}},
    Entry{TensorType::IQ3_XXS, {"IQ3_XXS", 256, 98, false}},
    Entry{TensorType::IQ1_S, {"IQ1_S", 256, 50, false}},
    Entry{TensorType::IQ4_NL, {"IQ4_NL", 32, 18, false}},
    Entry{TensorType::IQ3_S, {"IQ3_S", 256, 110, false}},
    Entry{TensorType::IQ2_S, {"IQ2_S", 256, 82, false}},
    Entry{TensorType::IQ4_XS, {"IQ4_XS", 256, 136, false}},
    Entry{TensorType::I8, {"I8", 1, 1, false}},
    Entry{TensorType::I16, {"I16", 1, 2, false}},
    Entry{TensorType::I32, {"I32", 1, 4, false}},
    Entry{TensorType::I64, {"I64", 1, 8, false}},
    Entry{TensorType::F64, {"F64", 1, 8, false}},
    Entry{TensorType::IQ1_M, {"IQ1_M", 256, 56, false}},
    Entry{TensorType::BF16, {"BF16", 1, 2, true}},
    Entry{TensorType::TQ1_0, {"TQ1_0", 256, 54, false}},
    Entry{TensorType::TQ2_0, {"TQ2_0", 256, 66, false}},
    Entry{TensorType::MXFP4, {"MXFP4", 32, 17, false}},
};

// llama.cpp's general.file_type codes (llama.h, LLAMA_FTYPE_*); gaps are retired codes.
constexpr std::array<std::pair<uint32_t, std::string_view>, 36> kFileTypes = {{
    {0, "F32"},      {1, "F16"},      {2, "Q4_0"},     {3, "Q4_1"},     {7, "Q8_0"},
    {8, "Q5_0"},     {9, "Q5_1"},     {10, "Q2_K"},    {11, "Q3_K_S"},  {12, "Q3_K_M"},
    {13, "Q3_K_L"},  {14, "Q4_K_S"},  {15, "Q4_K_M"},  {16, "Q5_K_S"},  {17, "Q5_K_M"},
    {18, "Q6_K"},    {19, "IQ2_XXS"}, {20, "IQ2_XS"},  {21, "Q2_K_S"},  {22, "IQ3_XS"},
    {23, "IQ3_XXS"}, {24, "IQ1_S"},   {25, "IQ4_NL"},  {26, "IQ3_S"},   {27, "IQ3_M"},
    {28, "IQ2_S"},   {29, "IQ2_M"},   {30, "IQ4_XS"},  {31, "IQ1_M"},   {32, "BF16"},
    {36, "TQ1_0"},   {37, "TQ2_0"},   {38, "MXFP4_MOE"}, {39, "NVFP4"}, {40, "Q1_0"},
    {41, "Q2_0"},
}};

}  // namespace

std::optional<TensorTypeInfo> tensor_type_info(uint32_t type_id) {
  for (const auto& e : kTypes)
    if (static_cast<uint32_t>(e.type) == type_id) return e.info;
  return std::nullopt;
}

const TensorTypeInfo& info(TensorType t) {
  for (const auto& e : kTypes)
    if (e.type == t) return e.info;
  return kTypes[0].info;  // unreachable for valid enum values
}

std::optional<TensorType> tensor_type_from_name(std::string_view name) {
  std::string upper(name);
  for (char& c : upper) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  for (const auto& e : kTypes)
    if (e.info.name == upper) return e.type;
  return std::nullopt;
}

std::optional<uint32_t> llama_file_type(TensorType t) {
  switch (t) {
    case TensorType::F32: return 0;
    case TensorType::F16: return 1;
    case TensorType::Q4_0: return 2;
    case TensorType::Q4_1: return 3;
    case TensorType::Q8_0: return 7;
    case TensorType::Q4_K: return 14;  // Q4_K_S
    case TensorType::Q5_K: return 16;  // Q5_K_S
    case TensorType::Q6_K: return 18;
    case TensorType::BF16: return 32;
    default: return std::nullopt;
  }
}

std::optional<std::string_view> llama_file_type_name(uint32_t code) {
  for (const auto& [c, name] : kFileTypes)
    if (c == code) return name;
  return std::nullopt;
}

}  // namespace reprise
