#include "format/tensor_type.h"

#include <array>
#include <cctype>
#include <string>

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
    Entry{TensorType::Q4_1, {"Q4_1", 32, 20, false}},
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
    Entry{TensorType::I8, {"I8", 1, 1, false}},
    Entry{TensorType::I16, {"I16", 1, 2, false}},
    Entry{TensorType::I32, {"I32", 1, 4, false}},
    Entry{TensorType::I64, {"I64", 1, 8, false}},
    Entry{TensorType::F64, {"F64", 1, 8, false}},
    Entry{TensorType::BF16, {"BF16", 1, 2, true}},
};

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
    case TensorType::Q8_0: return 7;
    case TensorType::Q4_K: return 14;  // Q4_K_S
    case TensorType::Q5_K: return 16;  // Q5_K_S
    case TensorType::Q6_K: return 18;
    case TensorType::BF16: return 32;
    default: return std::nullopt;
  }
}

}  // namespace reprise
