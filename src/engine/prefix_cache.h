// Reuse of a baseline run across layer paths (the scan's main lever on cost).
//
// For a token sequence, the cache runs the baseline path and keeps the residual stream leaving
// every path position and the KV of every slot. A Session along another path whose first b
// positions equal the baseline's then copies those b KV slots and starts its forward pass at
// position b from the cached residual: the result is bit-identical to running the whole path,
// for the cost of the positions after b. RYS config (i, j) shares b = j positions with the plain
// path; skip (i, j) shares b = i.
//
// Entries cover a window [from, end) of a sequence (the tokens a Session feeds in one prefill
// after the n_past = from it already holds), so every request kind reuses the baseline: a
// multiple-choice context and each choice after it, the later chunks of a long passage, a
// few-shot prefix. The baseline session keeps the KV and stream of the last sequence it ran and
// runs a new window from that sequence's first `from` tokens, so the choices of one question
// share their context's baseline run too. It runs each window in one prefill, as the asking
// session would, because kernels may round differently when the same rows come in other chunks:
// that is what keeps reuse bit-exact. A window whose first `from` tokens the baseline session
// no longer holds is not served (the asking session computes it whole).
#pragma once

#include <cstdint>
#include <list>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/kv_cache.h"
#include "engine/layer_path.h"
#include "engine/session.h"

namespace reprise {

class PrefixCache {
 public:
  struct Entry {
    int from = 0;                              // first position covered
    std::vector<std::vector<float>> residual;  // [slot] stream leaving that slot: [n, n_embd]
    KvCache kv;                                // base_path().size() slots, n positions from 0
    uint64_t bytes = 0;
  };

  // Runs `base` with its own Session (opts: threads, n_batch, kv type, n_ctx); keeps at most
  // max_bytes of entries, evicting the least recently used.
  PrefixCache(const Model& model, LayerPath base, const SessionOptions& opts,
              uint64_t max_bytes = uint64_t{4} << 30);

  const LayerPath& base_path() const { return base_.path(); }
  // The rope scaling of the baseline's context size: a session with another one cannot share it.
  const RopeScaling& rope_scaling() const { return base_.rope_scaling(); }

  // The baseline for positions [from, tokens.size()) of the sequence `tokens` (from <
  // tokens.size()), computed if not cached; nullptr when it cannot be computed exactly (the
  // baseline session no longer holds tokens[0, from)). Valid until the next call.
  // batch_invariant: the window as a Session::set_batch_invariant(true) prefill computes it.
  const Entry* get(std::span<const int32_t> tokens, int from = 0, bool batch_invariant = false);
  // The same without computing: nullptr when the window is not cached.
  const Entry* find(std::span<const int32_t> tokens, int from, bool batch_invariant = false);

  // Number of leading positions where `path` runs the same layers as the base path.
  int shared_positions(const LayerPath& path) const;

  // Layer evaluations (path positions x tokens) spent on baseline runs so far.
  int64_t baseline_evals() const { return baseline_evals_; }
  uint64_t bytes() const { return bytes_; }

 private:
  // Makes the baseline session hold `tokens`, running tokens[from, end) in one prefill after the
  // first `from` tokens it holds, and stream_ every position's residual. False (nothing run)
  // when it does not hold those `from` tokens.
  bool run_base(std::span<const int32_t> tokens, int from, bool batch_invariant);
  // Whether a batch-invariant run of window [from, end) rounds differently from a plain one
  // (then it is cached under its own key; otherwise the two share the entry).
  bool invariant_differs(std::span<const int32_t> tokens, int from, bool batch_invariant) const;

  Session base_;
  std::vector<int32_t> base_tokens_;        // the sequence whose KV base_ holds
  std::vector<std::vector<float>> stream_;  // [slot] stream of base_tokens_: [n, n_embd]
  uint64_t max_bytes_;
  uint64_t bytes_ = 0;
  int64_t baseline_evals_ = 0;
  std::list<std::pair<std::string, Entry>> entries_;  // most recently used first
  std::unordered_map<std::string, std::list<std::pair<std::string, Entry>>::iterator> index_;
};

}  // namespace reprise
