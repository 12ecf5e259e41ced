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
#include "format/tensor_type.h"

namespace reprise {

// A file written under a temporary name beside its final path and renamed into place by commit().
// Until commit() succeeds the final path is untouched; the destructor (also during unwinding)
// removes the temporary file. Every write is checked: a full disk, a file-size limit (with
// SIGXFSZ ignored) or an I/O error throws Error naming the final path and the system's reason.
// Shared by the GGUF and safetensors writers.
class OutputFile {
 public:
  // Creates `path.tmp-XXXXXX` (mode 0666 minus umask). Throws Error when `path` exists and
  // !overwrite, or when the directory does not exist or is not writable.
  OutputFile(const std::filesystem::path& path, bool overwrite);
  ~OutputFile();
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  void write(const void* data, size_t n);
  void write(std::span<const std::byte> bytes) { write(bytes.data(), bytes.size()); }
  // Writes zero bytes up to the next multiple of `alignment`.
  void pad_to(uint64_t alignment);
  uint64_t size() const { return written_; }
  const std::filesystem::path& path() const { return path_; }
  const std::filesystem::path& temp_path() const { return temp_; }

  // Flushes, syncs, closes and renames the file to its final path. Without overwrite the rename
  // refuses to replace a file that appeared meanwhile.
  void commit();

 private:
  void flush();
  void write_fd(const std::byte* p, size_t n);
  [[noreturn]] void fail(const std::string& what, int err) const;

  std::filesystem::path path_, temp_;
  bool overwrite_;
  int fd_ = -1;
  bool committed_ = false;
  uint64_t written_ = 0;           // bytes accepted by write(), buffered or not
  uint64_t on_disk_ = 0;           // bytes the kernel has taken
  std::vector<std::byte> buffer_;  // fixed size; the first buffered_ bytes are pending
  size_t buffered_ = 0;
};

class GgufWriter {
 public:
  // Fills exactly the tensor's bytes; called once, during write(), so converted tensors need not
  // all be held in memory at once.
  using Fill = std::function<void(std::span<std::byte> out)>;

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
  struct Entry {
    std::string name;
    TensorType type;
    std::vector<int64_t> shape;
    std::span<const std::byte> data;  // view (into owned_ or the caller's memory)
    int alias_of = -1;                // index of the tensor whose data this entry reuses
    Fill fill;                        // set instead of data for lazily produced tensors
    uint64_t nbytes = 0;
  };
  Entry& new_entry(const std::string& name, TensorType type, std::vector<int64_t> shape);

  uint32_t alignment_;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<Entry> tensors_;
  std::vector<std::vector<std::byte>> owned_;
};

}  // namespace reprise
