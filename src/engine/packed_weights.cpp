#include "engine/packed_weights.h"

#include <unistd.h>

#include <fmt/format.h>

#include <charconv>
#include <cstdlib>
#include <string_view>
#include <vector>

#include "util/error.h"
#include "util/stopwatch.h"

namespace reprise {

namespace {

uint64_t default_budget() {
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  if (pages <= 0 || page <= 0) return uint64_t{4} << 30;  // unknown: 4 GiB
  return static_cast<uint64_t>(pages) * static_cast<uint64_t>(page) / 4;
}

// The matrices the dense forward pass (engine/session.cpp) multiplies with kernels::matmul, in
// the order it does: every layer's attention and FFN, then the output head. MoE experts and
// linear-attention layers' matrices are left to the unpacked path.
std::vector<const TensorView*> dense_matrices(const Weights& w) {
  std::vector<const TensorView*> out;
  for (const BlockWeights& b : w.blocks)
    for (const TensorView* m : {&b.wq, &b.wk, &b.wv, &b.wo, &b.w_gate, &b.w_up, &b.w_down})
      if (!m->data.empty()) out.push_back(m);
  if (!w.output.data.empty()) out.push_back(&w.output);
  return out;
}

}  // namespace

std::optional<uint64_t> parse_pack_budget(std::string_view v, uint64_t default_bytes) {
  if (v.empty() || v == "1" || v == "on") return default_bytes;
  if (v == "0" || v == "off") return std::nullopt;
  uint64_t mib = 0;
  const auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), mib);
  if (ec != std::errc() || end != v.data() + v.size() || mib > (uint64_t{1} << 40))
    throw Error(fmt::format(
        "REPRISE_PACK={}: expected 0/off, 1/on, or a memory budget in MiB for packed weights", v));
  return mib << 20;
}

std::optional<uint64_t> pack_budget_bytes() {
  static const std::optional<uint64_t> budget = [] {
    const char* env = std::getenv("REPRISE_PACK");
    return parse_pack_budget(env ? env : "", default_budget());
  }();
  return budget;
}

PackedWeights::PackedWeights(const Model& model, uint64_t budget_bytes)
    : model_(model), budget_(budget_bytes) {}

std::shared_ptr<PackedWeights> PackedWeights::of(const Model& model) {
  const auto budget = pack_budget_bytes();
  if (!budget) return nullptr;
  // Weak entries: the packed weights go with the last session of their model, so they never
  // outlive its mapping (a Session holds a reference to its Model).
  static std::mutex mu;
  static std::unordered_map<const Model*, std::weak_ptr<PackedWeights>> registry;
  const std::lock_guard lock(mu);
  std::erase_if(registry, [](const auto& e) { return e.second.expired(); });
  auto& slot = registry[&model];
  if (auto p = slot.lock()) return p;
  auto p = std::make_shared<PackedWeights>(model, *budget);
  slot = p;
  return p;
}

void PackedWeights::ensure(ThreadPool& pool) {
  if (ready_.load(std::memory_order_acquire)) return;
  const std::lock_guard lock(mu_);
  if (attempted_) return;
  attempted_ = true;  // a failure (bad_alloc) is not retried at every prefill
  const Stopwatch clock;
  isa_ = kernels::active_isa();
  for (const TensorView* m : dense_matrices(model_.weights())) {
    if (by_data_.count(m->data.data())) continue;  // a tied output head is the embedding
    const uint64_t need = kernels::PackedMatrix::packed_bytes(*m);
    if (need == 0) continue;  // no packed form (float weights, other types, REPRISE_PREFILL=f32)
    if (bytes_ + need > budget_) {
      ++n_skipped_;
      continue;
    }
    auto pm = kernels::PackedMatrix::pack(*m, pool);
    bytes_ += pm.bytes();
    ++n_packed_;
    by_data_.emplace(m->data.data(), std::move(pm));
  }
  seconds_ = clock.seconds();
  ready_.store(true, std::memory_order_release);
}

const kernels::PackedMatrix* PackedWeights::find(const TensorView& w) const {
  if (!ready_.load(std::memory_order_acquire)) return nullptr;
  const auto it = by_data_.find(w.data.data());
  if (it == by_data_.end() || !it->second.usable_for(w)) return nullptr;
  return &it->second;
}

std::string PackedWeights::describe() const {
  if (!packed() || n_packed_ == 0) return "";
  std::string s = fmt::format(
      "packed weights: {} matrices, {:.0f} MiB, for the {} integer prefill (packed once in "
      "{:.1f} s; REPRISE_PACK=0 turns this off)",
      n_packed_, static_cast<double>(bytes_) / (1 << 20), kernels::isa_name(isa_), seconds_);
  if (n_skipped_ > 0)
    s += fmt::format("; {} more left unpacked by the {:.0f} MiB budget (REPRISE_PACK=MiB)",
                     n_skipped_, static_cast<double>(budget_) / (1 << 20));
  return s;
}

}  // namespace reprise
