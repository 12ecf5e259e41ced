#include "engine/kv_cache.h"

#include <algorithm>

#include <cstring>

#include "kernels/quant.h"

namespace reprise {

std::string_view kv_type_name(KvType t) {
  return t == KvType::F16 ? "f16" : "f32";
}

std::optional<KvType> kv_type_from_name(std::string_view s) {
  auto eq = [&](std::string_view n) {
    if (s.size() != n.size()) return false;
    for (size_t i = 0; i < s.size(); ++i)
      if ((s[i] | 0x20) != n[i]) return false;
    return true;
  };
  if (eq("f32")) return KvType::F32;
  if (eq("f16")) return KvType::F16;
  return std::nullopt;
}

KvCache::KvCache(int n_slots, int n_ctx, int kv_dim, KvType type)
    : n_slots_(n_slots), n_ctx_(n_ctx), kv_dim_(kv_dim), type_(type) {
  const size_t n = static_cast<size_t>(n_slots) * n_ctx * kv_dim * elem_bytes();
  k_.resize(n);
  v_.resize(n);
}

void KvCache::store(int slot, int pos, const float* k, const float* v) {
  std::byte* kd = &k_[index(slot, pos)];
  std::byte* vd = &v_[index(slot, pos)];
  if (type_ == KvType::F32) {
    std::memcpy(kd, k, kv_dim_ * sizeof(float));
    std::memcpy(vd, v, kv_dim_ * sizeof(float));
    return;
  }
  for (int i = 0; i < kv_dim_; ++i) {
    const uint16_t hk = kernels::fp32_to_fp16(k[i]), hv = kernels::fp32_to_fp16(v[i]);
    std::memcpy(kd + 2 * i, &hk, 2);
    std::memcpy(vd + 2 * i, &hv, 2);
  }
}

void KvCache::copy_rows_from(const KvCache& src, int src_slot, int src_pos, int dst_slot,
                             int dst_pos, int n_pos) {
  if (n_pos <= 0) return;
  const size_t n = static_cast<size_t>(n_pos) * kv_dim_ * elem_bytes();
  std::copy_n(&src.k_[src.index(src_slot, src_pos)], n, &k_[index(dst_slot, dst_pos)]);
  std::copy_n(&src.v_[src.index(src_slot, src_pos)], n, &v_[index(dst_slot, dst_pos)]);
}

}  // namespace reprise
