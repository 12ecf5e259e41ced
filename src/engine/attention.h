// Rotary position embedding and causal attention over one KV slot.
#pragma once

#include <cstdint>

#include "engine/kv_cache.h"
#include "model/hparams.h"
#include "util/thread_pool.h"

namespace reprise {

// Rotates each head of x[T, n_heads * head_dim] in place; row t is at position pos0 + t. The
// rope base and position scale are those of `layer` (the physical layer, whatever path position
// runs it); the frequency divisors and attention factor those of the sequence (`scaling`, which
// depends on its context size, not on the layer). A layer without rope (LayerAttn::rope false)
// leaves x as it is.
void apply_rope(float* x, int64_t T, int n_heads, const HParams& hp, const LayerAttn& layer,
                const RopeScaling& scaling, int pos0);

// ctx[t, h*hd..] = softmax(cap(q_h k^T * hp.score_scale())) v over the cache positions of
// `slot` that the query at pos0 + t sees: 0..pos0+t, or the last layer.window of them on a
// sliding-window layer. cap(s) = c tanh(s / c) with c = hp.attn_softcap, or s when that is 0.
// q: [T, n_head * head_dim]; ctx: [T, n_head * head_dim]. Query head h reads KV head
// h / (n_head / n_head_kv) (grouped-query attention). Runs kernels::attention over (head, tile of
// 16 queries) jobs; a row's result does not depend on T or pos0's split of the prompt (bit for
// bit), which batch-invariant scoring relies on.
void causal_attention(const float* q, const KvCache& cache, int slot, int64_t T, int pos0,
                      const HParams& hp, const LayerAttn& layer, float* ctx, ThreadPool& pool);

}  // namespace reprise
