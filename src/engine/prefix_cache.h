// Reuse of a baseline run across layer paths (the scan's main lever on cost).
//
// For a token sequence, the cache runs the baseline path once and keeps the residual stream
// leaving every path position and the KV of every slot. A Session along another path whose
// first b positions equal the baseline's then copies those b KV slots and starts its forward
// pass at position b from the cached residual: the result is bit-identical to running the whole
// path, for the cost of the positions after b. RYS config (i, j) shares b = j positions with the
// plain path; skip (i, j) shares b = i.
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
    std::vector<int32_t> tokens;
    std::vector<std::vector<float>> residual;  // [slot] stream leaving that slot: [T, n_embd]
    KvCache kv;                                // base_path().size() slots, T positions
    uint64_t bytes = 0;
  };

  // Runs `base` with its own Session (opts: threads, n_batch, kv type); keeps at most
  // max_bytes of entries, evicting the least recently used.
  PrefixCache(const Model& model, LayerPath base, const SessionOptions& opts,
              uint64_t max_bytes = uint64_t{4} << 30);

  const LayerPath& base_path() const { return base_.path(); }

  // The entry for `tokens`, computing the baseline if it is not cached. The reference stays
  // valid until the next call.
  const Entry& get(std::span<const int32_t> tokens);

  // Number of leading positions where `path` runs the same layers as the base path.
  int shared_positions(const LayerPath& path) const;

  // Layer evaluations (path positions x tokens) spent on baseline runs so far.
  int64_t baseline_evals() const { return baseline_evals_; }
  uint64_t bytes() const { return bytes_; }

 private:
  Session base_;
  uint64_t max_bytes_;
  uint64_t bytes_ = 0;
  int64_t baseline_evals_ = 0;
  std::list<Entry> entries_;  // most recently used first
  std::unordered_map<std::string, std::list<Entry>::iterator> index_;
};

}  // namespace reprise
