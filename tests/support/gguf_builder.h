// Builds GGUF bytes in memory for tests, including deliberately broken files.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

namespace reprise::test {

class GgufBuilder {
 public:
  uint32_t version = 3;
  uint32_t alignment = 32;
  // When set, written instead of the real counts (to build hostile headers).
  std::optional<uint64_t> tensor_count_override, kv_count_override;

  void kv_string(const std::string& key, const std::string& v) {
    key_header(key, 8);
    str(kv_, v);
  }
  void kv_u32(const std::string& key, uint32_t v) {
    key_header(key, 4);
    put(kv_, v);
  }
  void kv_f32(const std::string& key, float v) {
    key_header(key, 6);
    put(kv_, v);
  }
  void kv_string_array(const std::string& key, const std::vector<std::string>& v) {
    key_header(key, 9);
    put(kv_, uint32_t{8});
    put(kv_, uint64_t{v.size()});
    for (const auto& s : v) str(kv_, s);
  }
  // Raw bytes appended to the metadata section (count them with extra_kv).
  void kv_raw(const std::vector<uint8_t>& bytes, int extra_kv = 1) {
    kv_.insert(kv_.end(), bytes.begin(), bytes.end());
    n_kv_ += extra_kv;
  }

  // ne is ggml order (ne[0] contiguous). Data is appended to the data section, aligned.
  void tensor(const std::string& name, uint32_t type, std::vector<uint64_t> ne,
              const std::vector<uint8_t>& data, std::optional<uint64_t> offset_override = {}) {
    while (data_.size() % alignment) data_.push_back(0);
    str(ti_, name);
    put(ti_, static_cast<uint32_t>(ne.size()));
    for (auto d : ne) put(ti_, d);
    put(ti_, type);
    put(ti_, offset_override.value_or(data_.size()));
    data_.insert(data_.end(), data.begin(), data.end());
    ++n_tensors_;
  }
  void tensor_f32(const std::string& name, std::vector<uint64_t> ne, const std::vector<float>& v) {
    std::vector<uint8_t> bytes(v.size() * 4);
    std::memcpy(bytes.data(), v.data(), bytes.size());
    tensor(name, 0, std::move(ne), bytes);
  }

  std::vector<uint8_t> build() const {
    std::vector<uint8_t> out;
    put(out, uint32_t{0x46554747});
    put(out, version);
    put(out, tensor_count_override.value_or(n_tensors_));
    put(out, kv_count_override.value_or(n_kv_));
    out.insert(out.end(), kv_.begin(), kv_.end());
    out.insert(out.end(), ti_.begin(), ti_.end());
    while (out.size() % alignment) out.push_back(0);
    out.insert(out.end(), data_.begin(), data_.end());
    return out;
  }

  template <typename T>
  static void put(std::vector<uint8_t>& out, T v) {
    uint8_t b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));
    out.insert(out.end(), b, b + sizeof(T));
  }
  static void str(std::vector<uint8_t>& out, const std::string& s) {
    put(out, uint64_t{s.size()});
    out.insert(out.end(), s.begin(), s.end());
  }

 private:
  void key_header(const std::string& key, uint32_t type) {
    str(kv_, key);
    put(kv_, type);
    ++n_kv_;
  }
  std::vector<uint8_t> kv_, ti_, data_;
  uint64_t n_kv_ = 0, n_tensors_ = 0;
};

// Writes bytes to a fresh file under a per-test temporary directory and returns its path.
std::filesystem::path write_temp_file(const std::string& name, const std::vector<uint8_t>& bytes);

// A complete, valid random-weight llama GGUF: n_layer blocks of width d (heads of 4), F32.
// Optional hooks let tests corrupt it.
std::vector<uint8_t> tiny_llama_gguf(int n_layer = 2, int d = 8, int n_ff = 16, int n_vocab = 16,
                                     uint32_t seed = 1);

}  // namespace reprise::test
