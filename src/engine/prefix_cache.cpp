#include "engine/prefix_cache.h"

#include <fmt/format.h>

#include <cstring>

#include "engine/common_prefix.h"
#include "kernels/dispatch.h"
#include "util/error.h"

namespace reprise {
namespace {

// The window's identity: where it starts and the whole sequence up to its end (what precedes it
// determines its stream).
// A batch-invariant window that the two modes would compute differently is another window.
std::string key_of(std::span<const int32_t> tokens, int from, bool invariant_differs = false) {
  std::string key(reinterpret_cast<const char*>(&from), sizeof from);
  key.append(reinterpret_cast<const char*>(tokens.data()), tokens.size_bytes());
  if (invariant_differs) key.push_back('i');
  return key;
}

// Appends the stream leaving each path position to out[slot] (chunks arrive in order).
class StreamCapture : public ForwardObserver {
 public:
  explicit StreamCapture(std::vector<std::vector<float>>& out) : out_(out) {}
  void block_out(int slot, int, const float* x, int64_t T, int64_t d) override {
    out_[slot].insert(out_[slot].end(), x, x + T * d);
  }

 private:
  std::vector<std::vector<float>>& out_;
};

}  // namespace

PrefixCache::PrefixCache(const Model& model, LayerPath base, const SessionOptions& opts,
                         uint64_t max_bytes)
    : base_(model, std::move(base), opts),
      stream_(static_cast<size_t>(base_.path().size())),
      max_bytes_(max_bytes) {}

int PrefixCache::shared_positions(const LayerPath& path) const {
  const LayerPath& base = base_.path();
  int b = 0;
  while (b < path.size() && b < base.size() && path.layers[b] == base.layers[b] &&
         path.alpha_at(b) == base.alpha_at(b))
    ++b;
  return b;
}

bool PrefixCache::invariant_differs(std::span<const int32_t> tokens, int from,
                                    bool batch_invariant) const {
  if (!batch_invariant) return false;
  // Only a prefill chunk of fewer than kGemmMinTokens tokens runs other kernels without it.
  const int64_t n = static_cast<int64_t>(tokens.size()) - from, tail = n % base_.n_batch();
  return n < kernels::kGemmMinTokens || (tail > 0 && tail < kernels::kGemmMinTokens);
}

bool PrefixCache::run_base(std::span<const int32_t> tokens, int from, bool batch_invariant) {
  if (common_prefix(base_tokens_, tokens) < static_cast<size_t>(from)) return false;
  // The window runs in one prefill from exactly `from`, as the session asking for it runs it:
  // kernels may round differently when the same rows come in other chunks.
  const size_t d = static_cast<size_t>(base_.model().hparams().n_embd);
  base_.truncate(from);
  base_tokens_.resize(from);
  for (auto& s : stream_) s.resize(from * d);
  StreamCapture capture(stream_);
  base_.set_observer(&capture);
  base_.set_batch_invariant(batch_invariant);
  try {
    base_.prefill(tokens.subspan(from));
  } catch (...) {
    base_.set_observer(nullptr);
    base_.reset();
    base_tokens_.clear();
    for (auto& s : stream_) s.clear();
    throw;
  }
  base_.set_observer(nullptr);
  base_tokens_.assign(tokens.begin(), tokens.end());
  baseline_evals_ += static_cast<int64_t>(tokens.size() - from) * base_.path().size();
  return true;
}

const PrefixCache::Entry* PrefixCache::find(std::span<const int32_t> tokens, int from,
                                            bool batch_invariant) {
  auto it = index_.find(key_of(tokens, from, invariant_differs(tokens, from, batch_invariant)));
  if (it == index_.end()) return nullptr;
  entries_.splice(entries_.begin(), entries_, it->second);
  return &it->second->second;
}

const PrefixCache::Entry* PrefixCache::get(std::span<const int32_t> tokens, int from,
                                           bool batch_invariant) {
  if (from < 0 || static_cast<size_t>(from) >= tokens.size())
    throw Error(
        fmt::format("prefix cache: window from {} of a {}-token sequence", from, tokens.size()));
  if (const Entry* e = find(tokens, from, batch_invariant)) return e;
  if (!run_base(tokens, from, batch_invariant)) return nullptr;
  const int T = static_cast<int>(tokens.size()), n = T - from, n_slots = base_.path().size();
  const size_t d = static_cast<size_t>(base_.model().hparams().n_embd);
  Entry e;
  e.from = from;
  e.kv = KvCache(n_slots, n, base_.kv_cache().kv_dim(), base_.kv_cache().type());
  for (int s = 0; s < n_slots; ++s) {
    e.kv.copy_rows_from(base_.kv_cache(), s, from, s, 0, n);
    e.residual.emplace_back(stream_[s].begin() + from * d, stream_[s].begin() + T * d);
  }
  e.bytes = e.kv.bytes();
  for (const auto& r : e.residual) e.bytes += r.size() * sizeof(float);

  std::string key = key_of(tokens, from, invariant_differs(tokens, from, batch_invariant));
  entries_.emplace_front(key, std::move(e));
  index_[std::move(key)] = entries_.begin();
  bytes_ += entries_.front().second.bytes;
  while (bytes_ > max_bytes_ && entries_.size() > 1) {
    bytes_ -= entries_.back().second.bytes;
    index_.erase(entries_.back().first);
    entries_.pop_back();
  }
  return &entries_.front().second;
}

}  // namespace reprise
