// GGUF (versions 2 and 3): metadata values and a bounds-checked reader over a mapped file.
//
// Every count, length, offset and size read from the file is checked against the bytes that are
// actually there before it is used, so a truncated or hostile file ends in a FormatError naming
// the file and the field, never in an out-of-bounds read.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "format/mapped_file.h"
#include "format/tensor_view.h"

namespace reprise {

enum class GgufType : uint32_t {
  U8 = 0,
  I8 = 1,
  U16 = 2,
  I16 = 3,
  U32 = 4,
  I32 = 5,
  F32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  U64 = 10,
  I64 = 11,
  F64 = 12,
};

std::string_view gguf_type_name(GgufType t);

// One metadata value. Scalars keep their exact type so a writer can reproduce them bit for bit.
struct GgufValue {
  GgufType type = GgufType::U32;
  // Scalars: integers (and bool) in `i` (u64 bit pattern kept), floats in `f`, strings in `str`.
  int64_t i = 0;
  double f = 0;
  std::string str;
  // Arrays: element type plus exactly one of the vectors below, by element kind.
  GgufType elem = GgufType::U32;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;
  std::vector<GgufValue> arrays;  // arrays of arrays

  bool is_array() const { return type == GgufType::ARRAY; }
  size_t array_size() const;

  static GgufValue of_string(std::string s);
  static GgufValue of_u32(uint32_t v);
  static GgufValue of_i32(int32_t v);
  static GgufValue of_f32(float v);
  static GgufValue of_bool(bool v);
};

std::string format_value(const GgufValue& v, size_t max_items = 8);

struct GgufTensorInfo {
  std::string name;
  uint32_t type_id = 0;
  std::vector<uint64_t> ne;  // ggml order: ne[0] is the contiguous dimension
  uint64_t offset = 0;       // relative to the start of the data section
  uint64_t nbytes = 0;
};

class GgufFile {
 public:
  // Maps and parses `path`. Throws FormatError (one line, naming file and field) on bad input.
  static std::unique_ptr<GgufFile> open(const std::filesystem::path& path);

  const std::string& path() const { return file_.path(); }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t data_offset() const { return data_offset_; }
  size_t file_size() const { return file_.size(); }

  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const GgufValue* find(std::string_view key) const;

  // Typed getters: nullopt when absent; FormatError naming the key when present with a wrong type.
  std::optional<std::string> get_string(std::string_view key) const;
  std::optional<int64_t> get_int(std::string_view key) const;   // any integer type
  std::optional<double> get_float(std::string_view key) const;  // any numeric type
  std::optional<bool> get_bool(std::string_view key) const;
  // Required variants: FormatError "missing required metadata KEY" when absent.
  std::string require_string(std::string_view key) const;
  int64_t require_int(std::string_view key) const;

  const std::vector<GgufTensorInfo>& tensor_infos() const { return infos_; }
  // View of a tensor by name; nullptr when absent. FormatError if its type cannot be read.
  const TensorView* tensor(std::string_view name) const;
  const std::vector<TensorView>& tensors() const { return views_; }

 private:
  explicit GgufFile(MappedFile file) : file_(std::move(file)) {}
  void parse();

  MappedFile file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  uint64_t data_offset_ = 0;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::unordered_map<std::string, size_t> metadata_index_;
  std::vector<GgufTensorInfo> infos_;
  std::vector<TensorView> views_;
  std::unordered_map<std::string, size_t> tensor_index_;
};

}  // namespace reprise
