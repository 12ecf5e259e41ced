// Internal to export/: a directory assembled under a temporary name beside its final path and
// renamed into place, so an HF export (config, shards, tokenizer files) appears whole or not at
// all.
#pragma once

#include <filesystem>
#include <span>
#include <string_view>

namespace reprise::exporter {

class OutputDir {
 public:
  // Checks the final path and creates `path.tmp-XXXXXX`. Throws Error when `path` exists and
  // !overwrite, when it exists but is not a directory of export files (so --force never deletes
  // unrelated data), or when the parent directory is missing or not writable.
  OutputDir(const std::filesystem::path& path, bool overwrite);
  ~OutputDir();  // removes the temporary directory unless committed
  OutputDir(const OutputDir&) = delete;
  OutputDir& operator=(const OutputDir&) = delete;

  // Where to write the files.
  const std::filesystem::path& dir() const { return temp_; }

  // Moves the directory into place, replacing an earlier export when overwriting.
  void commit();

 private:
  std::filesystem::path path_, temp_;
  bool overwrite_;
  bool committed_ = false;
};

// Tokenizer and generation files an HF directory may carry beside its weights; an HF export copies
// the ones its source has.
std::span<const std::string_view> hf_side_files();

// True for the file names an HF export writes (config, weights, index, tokenizer files).
bool is_export_file_name(const std::string& name);

}  // namespace reprise::exporter
