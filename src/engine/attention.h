// Rotary position embedding and causal attention over one KV slot.
#pragma once

#include <cstdint>

#include "engine/kv_cache.h"
#include "model/hparams.h"
#include "util/thread_pool.h"

namespace reprise {

// Rotates each head of x[T, n_heads * head_dim] in place; row t is at position pos0 + t.
void apply_rope(float* x, int64_t T, int n_heads, const HParams& hp, int pos0);

// ctx[t, h*hd..] = softmax(q_h k^T / sqrt(hd)) v over cache positions 0..pos0+t of `slot`.
// q: [T, n_head * head_dim]; ctx: [T, n_head * head_dim]. Query head h reads KV head
// h / (n_head / n_head_kv) (grouped-query attention).
void causal_attention(const float* q, const KvCache& cache, int slot, int64_t T, int pos0,
                      const HParams& hp, float* ctx, ThreadPool& pool);

}  // namespace reprise
