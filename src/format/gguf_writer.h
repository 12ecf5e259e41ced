// Writes GGUF v3 files: metadata in insertion order, tensors aligned, the output written to a
// temporary file in the same directory and renamed into place, so a failure never leaves a
// partial file behind.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>
#include <vector>

#include "format/gguf.h"
#include "format/tensor_type.h"

namespace reprise {

class GgufWriter {
 public:
  explicit GgufWriter(uint32_t alignment = 32);

  // Sets a metadata value, keeping the position of an existing key (new keys go last).
  void set(const std::string& key, GgufValue value);
  void erase(const std::string& key);
  // Copies every metadata entry of `src` (e.g. to keep tokenizer and chat template on export).
  void copy_metadata(const GgufFile& src);

  // Adds a tensor whose bytes live elsewhere (e.g. a mapped source file) and must outlive
  // write(). shape is row-major (outermost first); the writer reverses it to ggml order.
  void add_tensor(const std::string& name, TensorType type, std::vector<int64_t> shape,
                  std::span<const std::byte> data);
  // Same, but the writer keeps the bytes.
  void add_tensor(const std::string& name, TensorType type, std::vector<int64_t> shape,
                  std::vector<std::byte> data);
  // A tensor entry that points at the data of an earlier tensor `same_as` (no extra bytes).
  void add_alias(const std::string& name, const std::string& same_as);

  // Writes `path` (via `path.tmp-XXXX` + rename). Throws Error naming the path on any failure,
  // after removing the temporary file. Refuses to overwrite unless `overwrite`.
  void write(const std::filesystem::path& path, bool overwrite = false) const;

 private:
  struct Entry {
    std::string name;
    TensorType type;
    std::vector<int64_t> shape;
    std::span<const std::byte> data;  // view (into owned_ or the caller's memory)
    int alias_of = -1;                // index of the tensor whose data this entry reuses
  };
  uint32_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<Entry> tensors_;
  std::vector<std::vector<std::byte>> owned_;
};

}  // namespace reprise
