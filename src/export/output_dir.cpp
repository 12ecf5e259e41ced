#include "export/output_dir.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <random>
#include <system_error>

#include "util/error.h"

namespace reprise::exporter {
namespace fs = std::filesystem;

namespace {

std::string system_message(int err) {
  return std::error_code(err, std::generic_category()).message();
}

std::string random_suffix(std::mt19937_64& rng, const char* tag) {
  return fmt::format(".{}-{:06x}", tag, rng() & 0xffffff);
}

std::mt19937_64 seeded_rng() {
  std::random_device rd;
  return std::mt19937_64((uint64_t{rd()} << 32) ^ rd() ^ static_cast<uint64_t>(::getpid()));
}

}  // namespace

std::span<const std::string_view> hf_side_files() {
  static constexpr std::string_view kSideFiles[] = {
      "tokenizer.json",      "tokenizer_config.json", "special_tokens_map.json",
      "tokenizer.model",     "vocab.json",            "merges.txt",
      "added_tokens.json",   "chat_template.jinja",   "chat_template.json",
      "generation_config.json"};
  return kSideFiles;
}

bool is_export_file_name(const std::string& name) {
  if (name == "config.json" || name == "model.safetensors.index.json") return true;
  for (auto n : hf_side_files())
    if (name == n) return true;
  return name.ends_with(".safetensors");
}

OutputDir::OutputDir(const fs::path& path, bool overwrite) : path_(path), overwrite_(overwrite) {
  std::error_code ec;
  const auto st = fs::symlink_status(path, ec);
  if (fs::exists(st)) {
    if (!overwrite)
      throw Error(fmt::format("{}: already exists (use --force to overwrite)", path.string()));
    if (!fs::is_directory(st))
      throw Error(
          fmt::format("{}: exists and is not a directory; not replacing it", path.string()));
    // --force replaces an earlier export, never a directory holding anything else.
    for (const auto& e : fs::directory_iterator(path, ec)) {
      const std::string name = e.path().filename().string();
      if (!e.is_regular_file() || !is_export_file_name(name))
        throw Error(
            fmt::format("{}: holds {}, which an HF export does not write; not replacing "
                        "the directory",
                        path.string(), name));
    }
    if (ec)
      throw Error(fmt::format("{}: cannot list the directory: {}", path.string(), ec.message()));
  }
  const fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
  auto rng = seeded_rng();
  int err = 0;
  for (int attempt = 0; attempt < 100; ++attempt) {
    temp_ = path;
    temp_ += random_suffix(rng, "tmp");
    // mkdir applies the umask as for any new directory (mkdtemp would force 0700).
    if (::mkdir(temp_.c_str(), 0777) == 0) return;
    err = errno;
    if (err != EEXIST) break;
  }
  temp_.clear();
  throw Error(fmt::format("{}: cannot create a directory in {}: {}", path.string(), parent.string(),
                          system_message(err)));
}

OutputDir::~OutputDir() {
  if (committed_ || temp_.empty()) return;
  std::error_code ec;
  fs::remove_all(temp_, ec);
}

void OutputDir::commit() {
  if (::renameat2(AT_FDCWD, temp_.c_str(), AT_FDCWD, path_.c_str(), RENAME_NOREPLACE) == 0) {
    committed_ = true;
    return;
  }
  int err = errno;
  if (err == EEXIST && !overwrite_)
    throw Error(fmt::format("{}: already exists (use --force to overwrite)", path_.string()));
  if (err == EEXIST) {
    // Swap the new directory with the old export in one step, then delete the old one (now at
    // the temporary name).
    if (::renameat2(AT_FDCWD, temp_.c_str(), AT_FDCWD, path_.c_str(), RENAME_EXCHANGE) == 0) {
      committed_ = true;
      std::error_code ec;
      fs::remove_all(temp_, ec);
      return;
    }
    err = errno;
  }
  if (err != EINVAL && err != ENOSYS)
    throw Error(fmt::format("{}: cannot move the finished export into place: {}", path_.string(),
                            system_message(err)));
  // File systems without renameat2 flags: move any old export aside, move the new one in.
  fs::path old;
  std::error_code ec;
  if (fs::exists(path_, ec)) {
    if (!overwrite_)
      throw Error(fmt::format("{}: already exists (use --force to overwrite)", path_.string()));
    auto rng = seeded_rng();
    old = path_;
    old += random_suffix(rng, "old");
    if (::rename(path_.c_str(), old.c_str()) != 0)
      throw Error(fmt::format("{}: cannot move the old export aside: {}", path_.string(),
                              system_message(errno)));
  }
  if (::rename(temp_.c_str(), path_.c_str()) != 0) {
    err = errno;
    if (!old.empty()) ::rename(old.c_str(), path_.c_str());  // put the old export back
    throw Error(fmt::format("{}: cannot move the finished export into place: {}", path_.string(),
                            system_message(err)));
  }
  committed_ = true;
  if (!old.empty()) fs::remove_all(old, ec);
}

}  // namespace reprise::exporter
