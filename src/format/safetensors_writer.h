// Writes Hugging Face safetensors checkpoints: one file, or shards plus
// model.safetensors.index.json when the tensors exceed a size limit.
//
// Layout (as the safetensors reference implementation writes it): a u64 little-endian header
// length N, N bytes of JSON (padded with spaces so the data starts 8-byte aligned) giving each
// tensor's dtype, row-major shape and [begin, end) byte offsets, then the tensors back to back in
// header order with no gaps. Each file goes through OutputFile (util/output_file.h) (temporary
// name, checked writes, rename), so a failure leaves no partial file.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "format/tensor_bytes.h"
#include "format/tensor_type.h"

namespace reprise {

class SafetensorsWriter {
 public:
  // Fills exactly the tensor's bytes; called once, while its file is written.
  using Fill = TensorBytes::Fill;

  // The "__metadata__" string map (transformers expects {"format": "pt"}, set by default).
  void set_metadata(const std::string& key, const std::string& value);

  // type must be F32, F16 or BF16 (safetensors has no ggml block types). shape is row-major.
  // The span's bytes must outlive write().
  void add_tensor(const std::string& name, TensorType type, std::vector<int64_t> shape,
                  std::span<const std::byte> data);
  void add_tensor(const std::string& name, TensorType type, std::vector<int64_t> shape,
                  std::vector<std::byte> data);
  void add_tensor(const std::string& name, TensorType type, std::vector<int64_t> shape, Fill fill);

  size_t tensor_count() const { return tensors_.size(); }
  uint64_t data_bytes() const;

  // Writes all tensors to one file. Throws Error naming the path (nothing left behind).
  void write(const std::filesystem::path& path, bool overwrite = false) const;

  // Writes into the existing directory `dir`: model.safetensors when the data fits in
  // max_shard_bytes, else model-0000K-of-0000N.safetensors shards (tensors in order, a shard
  // closing before the tensor that would overflow it; a bigger tensor gets a shard of its own)
  // and model.safetensors.index.json. Returns the file names written. On failure the files this
  // call already finished are removed too.
  std::vector<std::string> write_sharded(const std::filesystem::path& dir, uint64_t max_shard_bytes,
                                         bool overwrite = false) const;

 private:
  struct Entry : TensorBytes {
    std::string name;
    TensorType type;
    std::vector<int64_t> shape;
  };
  Entry& new_entry(const std::string& name, TensorType type, std::vector<int64_t> shape);
  void write_file(const std::filesystem::path& path, size_t first, size_t last,
                  bool overwrite) const;

  std::vector<std::pair<std::string, std::string>> metadata_ = {{"format", "pt"}};
  std::vector<Entry> tensors_;
  std::vector<std::vector<std::byte>> owned_;
};

// The dtype name safetensors uses for `type` ("F32", "F16", "BF16"); throws Error for others.
std::string safetensors_dtype(TensorType type);

}  // namespace reprise
