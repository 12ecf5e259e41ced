// SHA-256 of byte strings and files (for recording which model file a scan used), computed by
// OpenSSL's libcrypto, which uses the CPU's SHA extensions where it has them: a multi-GB model
// file hashes in seconds rather than minutes.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace reprise {

class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void update(std::span<const std::byte> data);
  void update(std::string_view s) { update(std::as_bytes(std::span(s.data(), s.size()))); }
  std::string hex_digest();  // finishes the hash; call once

 private:
  struct Context;  // libcrypto's digest context, kept out of this header
  std::unique_ptr<Context> ctx_;
};

// Lower-case hex digest of `s`.
std::string sha256_hex(std::string_view s);
// Hash of a file's contents, read in chunks; throws Error naming the file if it can't be read.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace reprise
