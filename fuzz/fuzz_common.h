// Helpers shared by the libFuzzer targets.
//
// The contract under test: on any input, reprise either succeeds or throws its own typed error
// (reprise::Error, or serve::ApiError at the request boundary). Memory errors and UB are caught by
// ASan/UBSan; an exception of any other type escaping is reported as a crash too, because the
// CLI and the server would turn it into an unhelpful message or a 500 instead of naming the field.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <filesystem>
#include <string>
#include <string_view>
#include <typeinfo>

namespace reprise::fuzz {

// Aborts with the exception's type and message, so the crash report says what escaped.
[[noreturn]] inline void untyped_exception(const std::exception& e) {
  std::fprintf(stderr, "fuzz: exception of type %s escaped: %s\n", typeid(e).name(), e.what());
  std::abort();
}

// The readers take a path, so every input is written to one file per process in /dev/shm (a tmpfs:
// no disk I/O). The file is rewritten in place; each open() maps it afresh.
class InputFile {
 public:
  explicit InputFile(const std::string& name) {
    const std::filesystem::path base =
        std::filesystem::exists("/dev/shm") ? "/dev/shm" : std::filesystem::temp_directory_path();
    dir_ = base / ("reprise-fuzz-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    path_ = dir_ / name;
  }
  ~InputFile() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  // Replaces the file's contents with `data`.
  const std::filesystem::path& write(const uint8_t* data, size_t size) {
    const int fd = ::open(path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) {
      std::perror("fuzz: open");
      std::abort();
    }
    size_t done = 0;
    while (done < size) {
      const ssize_t n = ::write(fd, data + done, size - done);
      if (n <= 0) {
        std::perror("fuzz: write");
        std::abort();
      }
      done += static_cast<size_t>(n);
    }
    ::close(fd);
    return path_;
  }

  const std::filesystem::path& dir() const { return dir_; }

 private:
  std::filesystem::path dir_, path_;
};

// The repository root, for the bundled model and tokenizer fixtures.
inline std::filesystem::path source_dir() {
  if (const char* env = std::getenv("REPRISE_SOURCE_DIR")) return env;
  return REPRISE_SOURCE_DIR;
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace reprise::fuzz
