// Keys and values per path position ("slot"): a layer visited twice by the path sees different
// inputs on each visit, so each visit keeps its own K/V. Slot p belongs to path position p.
#pragma once

#include <cstddef>
#include <cstdint>
#include <algorithm>
#include <vector>

namespace reprise {

class KvCache {
 public:
  KvCache() = default;
  // n_slots path positions, n_ctx token positions each, kv_dim = n_head_kv * head_dim floats.
  KvCache(int n_slots, int n_ctx, int kv_dim);

  int n_slots() const { return n_slots_; }
  int n_ctx() const { return n_ctx_; }
  int kv_dim() const { return kv_dim_; }

  // Row of keys / values of `slot` at token position `pos`: [kv_dim] floats.
  float* key(int slot, int pos) { return &k_[index(slot, pos)]; }
  float* value(int slot, int pos) { return &v_[index(slot, pos)]; }
  const float* key(int slot, int pos) const { return &k_[index(slot, pos)]; }
  const float* value(int slot, int pos) const { return &v_[index(slot, pos)]; }

  // Writes the key and value rows ([kv_dim] each) of one token position.
  void store(int slot, int pos, const float* k, const float* v) {
    std::copy(k, k + kv_dim_, key(slot, pos));
    std::copy(v, v + kv_dim_, value(slot, pos));
  }

  // Copies positions [0, n_pos) of `src_slot` in `src` into `dst_slot` here (same kv_dim):
  // a scan reuses the KV a baseline run computed for the layers both paths share.
  void copy_rows_from(const KvCache& src, int src_slot, int dst_slot, int n_pos) {
    const size_t n = static_cast<size_t>(n_pos) * kv_dim_;
    std::copy_n(&src.k_[src.index(src_slot, 0)], n, &k_[index(dst_slot, 0)]);
    std::copy_n(&src.v_[src.index(src_slot, 0)], n, &v_[index(dst_slot, 0)]);
  }
  uint64_t bytes() const { return (k_.size() + v_.size()) * sizeof(float); }

 private:
  size_t index(int slot, int pos) const {
    return (static_cast<size_t>(slot) * n_ctx_ + pos) * kv_dim_;
  }

  int n_slots_ = 0, n_ctx_ = 0, kv_dim_ = 0;
  std::vector<float> k_;  // [n_slots, n_ctx, kv_dim]
  std::vector<float> v_;  // [n_slots, n_ctx, kv_dim]
};

}  // namespace reprise
