#include "util/output_file.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <random>
#include <system_error>

#include "util/error.h"

namespace reprise {
namespace fs = std::filesystem;

namespace {

constexpr size_t kBufferBytes = size_t{4} << 20;

std::string system_message(int err) {
  return std::error_code(err, std::generic_category()).message();
}

// Temporary names are random rather than mkstemp/mkdtemp's, which force mode 0600/0700: the
// output should get the permissions (umask) any other new file or directory would.
std::mt19937_64 seeded_rng() {
  std::random_device rd;
  return std::mt19937_64((uint64_t{rd()} << 32) ^ rd() ^ static_cast<uint64_t>(::getpid()));
}

std::string random_suffix(std::mt19937_64& rng, const char* tag) {
  return fmt::format(".{}-{:06x}", tag, rng() & 0xffffff);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// OutputFile

OutputFile::OutputFile(const fs::path& path, bool overwrite) : path_(path), overwrite_(overwrite) {
  std::error_code ec;
  const auto st = fs::symlink_status(path, ec);
  if (fs::exists(st)) {
    if (!overwrite)
      throw Error(fmt::format("{}: already exists (use --force to overwrite)", path.string()));
    if (fs::is_directory(st))
      throw Error(fmt::format("{}: is a directory, cannot replace it with a file", path.string()));
  }
  const fs::path dir = path.has_parent_path() ? path.parent_path() : fs::path(".");
  // O_EXCL on a random name instead of mkstemp: mkstemp creates mode 0600, and the file should
  // get the permissions (umask) any other new file would.
  auto rng = seeded_rng();
  int err = 0;
  for (int attempt = 0; attempt < 100; ++attempt) {
    temp_ = path;
    temp_ += random_suffix(rng, "tmp");
    fd_ = ::open(temp_.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (fd_ >= 0) break;
    err = errno;
    if (err != EEXIST) break;
  }
  if (fd_ < 0) {
    temp_.clear();
    throw Error(fmt::format("{}: cannot create a file in {}: {}", path.string(), dir.string(),
                            system_message(err)));
  }
  buffer_.resize(kBufferBytes);
}

OutputFile::~OutputFile() {
  if (fd_ >= 0) ::close(fd_);
  if (!committed_ && !temp_.empty()) ::unlink(temp_.c_str());
}

void OutputFile::fail(const std::string& what, int err) const {
  throw Error(fmt::format("{}: {}: {}", path_.string(), what, system_message(err)));
}

void OutputFile::write_fd(const std::byte* p, size_t n) {
  while (n > 0) {
    const ssize_t k = ::write(fd_, p, std::min<size_t>(n, size_t{1} << 30));
    if (k < 0) {
      if (errno == EINTR) continue;
      fail(fmt::format("write failed after {} bytes", on_disk_), errno);
    }
    // A zero-byte write of a non-empty buffer makes no progress; POSIX leaves it unspecified,
    // so treat it as the disk being full rather than loop forever.
    if (k == 0) fail(fmt::format("write failed after {} bytes", on_disk_), ENOSPC);
    on_disk_ += static_cast<uint64_t>(k);
    p += k;
    n -= static_cast<size_t>(k);
  }
}

void OutputFile::flush() {
  if (buffered_ == 0) return;
  write_fd(buffer_.data(), buffered_);
  buffered_ = 0;
}

void OutputFile::write(const void* data, size_t n) {
  if (fd_ < 0) throw Error(fmt::format("{}: write after commit", path_.string()));
  const auto* p = static_cast<const std::byte*>(data);
  if (buffered_ + n <= kBufferBytes) {
    if (n > 0) std::memcpy(buffer_.data() + buffered_, p, n);
    buffered_ += n;
    written_ += n;
    return;
  }
  flush();
  written_ += n;
  if (n >= kBufferBytes) {
    // Large tensors go straight from the (mapped) source to the file.
    write_fd(p, n);
  } else {
    std::memcpy(buffer_.data(), p, n);
    buffered_ = n;
  }
}

void OutputFile::pad_to(uint64_t alignment) {
  static const std::byte zeros[256] = {};
  uint64_t pad = (alignment - written_ % alignment) % alignment;
  while (pad > 0) {
    const size_t k = static_cast<size_t>(std::min<uint64_t>(pad, sizeof zeros));
    write(zeros, k);
    pad -= k;
  }
}

void OutputFile::commit() {
  if (fd_ < 0) throw Error(fmt::format("{}: committed twice", path_.string()));
  flush();
  // Data must be on disk before the name points at it, or a crash could leave a complete-looking
  // name over missing blocks. Some file systems only report a full disk here or at close.
  if (::fsync(fd_) != 0 && errno != EINVAL && errno != EROFS) fail("sync failed", errno);
  const int fd = fd_;
  fd_ = -1;
  if (::close(fd) != 0) fail("close failed", errno);
  if (overwrite_) {
    if (::rename(temp_.c_str(), path_.c_str()) != 0) fail("cannot rename the finished file", errno);
  } else {
    // Without --force a file that appeared while we were writing must survive.
    if (::renameat2(AT_FDCWD, temp_.c_str(), AT_FDCWD, path_.c_str(), RENAME_NOREPLACE) != 0) {
      const int err = errno;
      if (err == EEXIST)
        throw Error(fmt::format("{}: already exists (use --force to overwrite)", path_.string()));
      if (err != EINVAL && err != ENOSYS) fail("cannot rename the finished file", err);
      // File systems without RENAME_NOREPLACE: link() also refuses an existing target.
      if (::link(temp_.c_str(), path_.c_str()) != 0) {
        const int lerr = errno;
        if (lerr == EEXIST)
          throw Error(fmt::format("{}: already exists (use --force to overwrite)", path_.string()));
        fail("cannot rename the finished file", lerr);
      }
      ::unlink(temp_.c_str());
    }
  }
  committed_ = true;
}

void write_file_atomically(const fs::path& path, std::string_view content, bool overwrite) {
  OutputFile out(path, overwrite);
  out.write(content.data(), content.size());
  out.commit();
}

// ---------------------------------------------------------------------------------------------
// OutputDir

OutputDir::OutputDir(const fs::path& path, bool overwrite, const Replaceable& replaceable,
                     std::string_view kind)
    : path_(path), overwrite_(overwrite) {
  std::error_code ec;
  const auto st = fs::symlink_status(path, ec);
  if (fs::exists(st)) {
    if (!overwrite)
      throw Error(fmt::format("{}: already exists (use --force to overwrite)", path.string()));
    if (!fs::is_directory(st))
      throw Error(
          fmt::format("{}: exists and is not a directory; not replacing it", path.string()));
    // --force replaces an earlier output, never a directory holding anything else.
    for (const auto& e : fs::directory_iterator(path, ec)) {
      const std::string name = e.path().filename().string();
      if (!e.is_regular_file() || !replaceable(name))
        throw Error(
            fmt::format("{}: holds {}, which {} does not write; not replacing the directory",
                        path.string(), name, kind));
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
    // Swap the new directory with the old output in one step, then delete the old one (now at
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
    throw Error(fmt::format("{}: cannot move the finished output into place: {}", path_.string(),
                            system_message(err)));
  // File systems without renameat2 flags: move any old output aside, move the new one in.
  fs::path old;
  std::error_code ec;
  if (fs::exists(path_, ec)) {
    if (!overwrite_)
      throw Error(fmt::format("{}: already exists (use --force to overwrite)", path_.string()));
    auto rng = seeded_rng();
    old = path_;
    old += random_suffix(rng, "old");
    if (::rename(path_.c_str(), old.c_str()) != 0)
      throw Error(fmt::format("{}: cannot move the old output aside: {}", path_.string(),
                              system_message(errno)));
  }
  if (::rename(temp_.c_str(), path_.c_str()) != 0) {
    err = errno;
    if (!old.empty()) ::rename(old.c_str(), path_.c_str());  // put the old output back
    throw Error(fmt::format("{}: cannot move the finished output into place: {}", path_.string(),
                            system_message(err)));
  }
  committed_ = true;
  if (!old.empty()) fs::remove_all(old, ec);
}

}  // namespace reprise
