// Writes GGUF v3 files: metadata in insertion order, tensors aligned, the output written to a
// temporary file in the same directory and renamed into place, so a failure never leaves a
// partial file behind.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "format/gguf.h"
#include "format/tensor_bytes.h"
#include "format/tensor_type.h"
#include "util/output_file.h"  // OutputFile, which write() goes through

namespace reprise {

class GgufWriter {
 public:
  // Fills exactly the tensor's bytes; called once, during write(), so converted tensors need not
  // all be held in memory at once.
  using Fill = TensorBytes::Fill;

  explicit GgufWriter(uint32_t alignment = 32);

  // Sets a metadata value, keeping the position of an existing key (new keys go last).
  void set(const std::string& key, GgufValue value);
  void erase(const std::string& key);
  // Copies every metadata entry of `src` (e.g. to keep tokenizer and chat template on export).
  void copy_metadata(const GgufFile& src);
  const GgufValue* find(const std::string& key) const;
  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }

  // Adds a tensor whose bytes live elsewhere (e.g. a mapped source file) and must outlive
  // write(). shape is row-major (outermost first); the writer reverses it to ggml order.
  void add_tensor(const std::string& name, TensorType type, std::vector<int64_t> shape,
                  std::span<const std::byte> data);
  // Same, but the writer keeps the bytes.
  void add_tensor(const std::string& name, TensorType type, std::vector<int64_t> shape,
                  std::vector<std::byte> data);
  // Same, with the bytes produced by `fill` when the file is written.
  void add_tensor(const std::string& name, TensorType type, std::vector<int64_t> shape, Fill fill);
  // A tensor entry that points at the data of an earlier tensor `same_as` (no extra bytes).
  void add_alias(const std::string& name, const std::string& same_as);

  size_t tensor_count() const { return tensors_.size(); }
  // Bytes of tensor data the file will hold (aliases count nothing), before alignment padding.
  uint64_t data_bytes() const;

  // Writes `path` (via `path.tmp-XXXX` + rename). Throws Error naming the path on any failure,
  // after removing the temporary file. Refuses to overwrite unless `overwrite`.
  void write(const std::filesystem::path& path, bool overwrite = false) const;

 private:
  struct Entry : TensorBytes {
    std::string name;
    TensorType type;
    std::vector<int64_t> shape;
    int alias_of = -1;  // index of the tensor whose data this entry reuses
  };
  Entry& new_entry(const std::string& name, TensorType type, std::vector<int64_t> shape);

  uint32_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<Entry> tensors_;
  std::vector<std::vector<std::byte>> owned_;
};

}  // namespace reprise
