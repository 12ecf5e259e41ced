#include "engine/kv_cache.h"

namespace reprise {

KvCache::KvCache(int n_slots, int n_ctx, int kv_dim)
    : n_slots_(n_slots),
      n_ctx_(n_ctx),
      kv_dim_(kv_dim),
      k_(static_cast<size_t>(n_slots) * n_ctx * kv_dim),
      v_(static_cast<size_t>(n_slots) * n_ctx * kv_dim) {}

}  // namespace reprise
