#include "engine/prefix_cache.h"

#include <cstring>

namespace reprise {
namespace {

std::string key_of(std::span<const int32_t> tokens) {
  return std::string(reinterpret_cast<const char*>(tokens.data()), tokens.size_bytes());
}

// Keeps the whole stream leaving each path position.
class StreamCapture : public ForwardObserver {
 public:
  explicit StreamCapture(std::vector<std::vector<float>>& out) : out_(out) {}
  void block_out(int slot, int, const float* x, int64_t T, int64_t d) override {
    if (static_cast<int>(out_.size()) <= slot) out_.resize(slot + 1);
    out_[slot].insert(out_[slot].end(), x, x + T * d);  // chunks arrive in order
  }

 private:
  std::vector<std::vector<float>>& out_;
};

}  // namespace

PrefixCache::PrefixCache(const Model& model, LayerPath base, const SessionOptions& opts,
                         uint64_t max_bytes)
    : base_(model, std::move(base), opts), max_bytes_(max_bytes) {}

int PrefixCache::shared_positions(const LayerPath& path) const {
  const LayerPath& base = base_.path();
  int b = 0;
  while (b < path.size() && b < base.size() && path.layers[b] == base.layers[b] &&
         path.alpha_at(b) == base.alpha_at(b))
    ++b;
  return b;
}

const PrefixCache::Entry& PrefixCache::get(std::span<const int32_t> tokens) {
  std::string key = key_of(tokens);
  if (auto it = index_.find(key); it != index_.end()) {
    entries_.splice(entries_.begin(), entries_, it->second);
    return *it->second;
  }
  Entry e;
  e.tokens.assign(tokens.begin(), tokens.end());
  StreamCapture capture(e.residual);
  base_.reset();
  base_.set_observer(&capture);
  try {
    base_.prefill(tokens);
  } catch (...) {
    base_.set_observer(nullptr);
    throw;
  }
  base_.set_observer(nullptr);
  const int T = static_cast<int>(tokens.size()), n_slots = base_.path().size();
  baseline_evals_ += int64_t{T} * n_slots;
  e.kv = KvCache(n_slots, T, base_.kv_cache().kv_dim(), base_.kv_cache().type());
  for (int s = 0; s < n_slots; ++s) e.kv.copy_rows_from(base_.kv_cache(), s, s, T);
  e.bytes = e.kv.bytes();
  for (const auto& r : e.residual) e.bytes += r.size() * sizeof(float);

  entries_.push_front(std::move(e));
  index_[key] = entries_.begin();
  bytes_ += entries_.front().bytes;
  while (bytes_ > max_bytes_ && entries_.size() > 1) {
    bytes_ -= entries_.back().bytes;
    index_.erase(key_of(entries_.back().tokens));
    entries_.pop_back();
  }
  return entries_.front();
}

}  // namespace reprise
