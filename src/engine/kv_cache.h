// Keys and values per path position ("slot"): a layer visited twice by the path sees different
// inputs on each visit, so each visit keeps its own K/V. Slot p belongs to path position p.
//
// Elements are F32 or F16 (`--kv-type`): F16 halves the cache and the bytes attention reads per
// token, at a relative rounding of 2^-11 per element.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace reprise {

enum class KvType { F32, F16 };

std::string_view kv_type_name(KvType t);                      // "f32", "f16"
std::optional<KvType> kv_type_from_name(std::string_view s);  // case-insensitive

class KvCache {
 public:
  KvCache() = default;
  // n_slots path positions, n_ctx token positions each, kv_dim = n_head_kv * head_dim elements.
  KvCache(int n_slots, int n_ctx, int kv_dim, KvType type = KvType::F32);

  int n_slots() const { return n_slots_; }
  int n_ctx() const { return n_ctx_; }
  int kv_dim() const { return kv_dim_; }
  KvType type() const { return type_; }
  size_t elem_bytes() const { return type_ == KvType::F16 ? 2 : 4; }

  // Row of keys / values of `slot` at token position `pos`: kv_dim elements of type(); the rows
  // of consecutive positions are kv_dim elements apart.
  const void* key_data(int slot, int pos) const { return &k_[index(slot, pos)]; }
  const void* value_data(int slot, int pos) const { return &v_[index(slot, pos)]; }

  // Writes the key and value rows ([kv_dim] floats each) of one token position, converting to
  // type().
  void store(int slot, int pos, const float* k, const float* v);

  // Copies positions [0, n_pos) of `src_slot` in `src` into `dst_slot` here (same kv_dim and
  // type): a scan reuses the KV a baseline run computed for the layers both paths share.
  void copy_rows_from(const KvCache& src, int src_slot, int dst_slot, int n_pos) {
    copy_rows_from(src, src_slot, 0, dst_slot, 0, n_pos);
  }
  // The same for positions [src_pos, src_pos + n_pos) of src into [dst_pos, dst_pos + n_pos).
  void copy_rows_from(const KvCache& src, int src_slot, int src_pos, int dst_slot, int dst_pos,
                      int n_pos);

  uint64_t bytes() const { return k_.size() + v_.size(); }

 private:
  size_t index(int slot, int pos) const {
    return ((static_cast<size_t>(slot) * n_ctx_ + pos) * kv_dim_) * elem_bytes();
  }

  int n_slots_ = 0, n_ctx_ = 0, kv_dim_ = 0;
  KvType type_ = KvType::F32;
  std::vector<std::byte> k_;  // [n_slots, n_ctx, kv_dim] elements of type_
  std::vector<std::byte> v_;  // [n_slots, n_ctx, kv_dim] elements of type_
};

}  // namespace reprise
