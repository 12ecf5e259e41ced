// SHA-256 of byte strings and files (for recording which model file a scan used).
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <span>
#include <string>

namespace reprise {

class Sha256 {
 public:
  Sha256();
  void update(std::span<const std::byte> data);
  void update(std::string_view s) { update(std::as_bytes(std::span(s.data(), s.size()))); }
  std::string hex_digest();  // finishes the hash; call once

 private:
  void block(const uint8_t* p);
  uint32_t h_[8];
  uint8_t buf_[64];
  size_t buf_len_ = 0;
  uint64_t total_ = 0;
};

std::string sha256_hex(std::string_view s);
// Hash of a file's contents, read in chunks; throws Error naming the file if it can't be read.
std::string sha256_file(const std::filesystem::path& path);

}  // namespace reprise
