// Atomic output: a file (OutputFile, write_file_atomically) or a directory (OutputDir) is
// assembled under a temporary name beside its final path and renamed into place, so a reader
// (or a crash) never sees a half-written result and a failure leaves the old one untouched.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace reprise {

// A file written under a temporary name beside its final path and renamed into place by commit().
// Until commit() succeeds the final path is untouched; the destructor (also during unwinding)
// removes the temporary file. Every write is checked: a full disk, a file-size limit (with
// SIGXFSZ ignored) or an I/O error throws Error naming the final path and the system's reason.
// The one home of atomic file output: the GGUF and safetensors writers, reports, result files.
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

// Writes `content` to `path` through an OutputFile (so atomically, every write checked).
// Throws Error naming `path` when it exists and !overwrite, or on any write failure.
void write_file_atomically(const std::filesystem::path& path, std::string_view content,
                           bool overwrite = true);

// A directory assembled under `path.tmp-XXXXXX` and moved into place by commit(), so a
// multi-file output (an HF export: config, shards, tokenizer files) appears whole or not at all.
class OutputDir {
 public:
  // Whether a file of an existing directory at `path` may be replaced (with overwrite): a
  // directory holding anything else is refused, so overwriting never deletes unrelated data.
  using Replaceable = std::function<bool(const std::string& file_name)>;

  // Checks the final path and creates the temporary directory. Throws Error when `path` exists
  // and !overwrite, when it exists but is not a directory holding only `replaceable` regular
  // files, or when the parent directory is missing or not writable. `kind` names the output in
  // that message ("an HF export").
  OutputDir(const std::filesystem::path& path, bool overwrite, const Replaceable& replaceable,
            std::string_view kind);
  ~OutputDir();  // removes the temporary directory unless committed
  OutputDir(const OutputDir&) = delete;
  OutputDir& operator=(const OutputDir&) = delete;

  // Where to write the files.
  const std::filesystem::path& dir() const { return temp_; }

  // Moves the directory into place, replacing an earlier one when overwriting.
  void commit();

 private:
  std::filesystem::path path_, temp_;
  bool overwrite_;
  bool committed_ = false;
};

}  // namespace reprise
