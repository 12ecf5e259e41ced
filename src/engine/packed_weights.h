// The weight matrices of one Model pre-packed for the integer prefill (kernels/packed.h), shared
// by every Session of that model.
//
// A scan or an eval runs thousands of short prefills (~64 tokens each) over the same weights;
// unpacking every weight into the prefill's panels in every matmul was a third of their time.
// Packing them once costs about one such unpacking, and 1.125-1.25 bytes per weight of memory
// (0.5B parameters: ~0.6 GiB). Results are bit for bit those of the unpacked path.
//
// Sessions that ask for it (SessionOptions::pack_weights: eval, scan, perplexity) pack every
// dense matrix of the model (attention, FFN, output head) at their first prefill of at least
// kernels::kGemmMinTokens tokens (or a batch-invariant one), once per model, within a memory
// budget; every session of the model then uses whatever is packed. Decode reads the original
// weights. REPRISE_PACK turns it off or sets the budget.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "kernels/packed.h"
#include "model/model.h"
#include "util/thread_pool.h"

namespace reprise {

// REPRISE_PACK as a budget in bytes: empty, "1" or "on": default_bytes; "0" or "off": never pack
// (nullopt); N (another integer): N MiB. Anything else throws Error naming the value.
std::optional<uint64_t> parse_pack_budget(std::string_view value, uint64_t default_bytes);
// The process's REPRISE_PACK, parsed once; the default budget is a quarter of physical memory.
std::optional<uint64_t> pack_budget_bytes();

class PackedWeights {
 public:
  PackedWeights(const Model& model, uint64_t budget_bytes);
  PackedWeights(const PackedWeights&) = delete;
  PackedWeights& operator=(const PackedWeights&) = delete;

  // The packed weights of `model` that every session of it shares (created empty on the first
  // call, freed with the last session holding them); nullptr when REPRISE_PACK turns packing off.
  static std::shared_ptr<PackedWeights> of(const Model& model);

  // Packs the model's dense matrices under the active ISA, in forward order, skipping those that
  // would take the total past the budget; once (later calls return at once). Thread-safe: a
  // second caller waits for the first to finish.
  void ensure(ThreadPool& pool);
  // w's packed form if it is packed and usable now (kernels::PackedMatrix::usable_for), else
  // nullptr. Lock-free once ensure() has finished; nullptr before.
  const kernels::PackedMatrix* find(const TensorView& w) const;

  bool packed() const { return ready_.load(std::memory_order_acquire); }
  int matrices() const { return n_packed_; }
  int skipped_for_budget() const { return n_skipped_; }
  uint64_t bytes() const { return bytes_; }
  uint64_t budget() const { return budget_; }
  double seconds() const { return seconds_; }
  // One line for a run's summary: what is packed, its size, the ISA and how to turn it off; ""
  // when nothing is packed.
  std::string describe() const;

 private:
  const Model& model_;
  uint64_t budget_;
  std::mutex mu_;
  bool attempted_ = false;  // under mu_
  std::atomic<bool> ready_{false};
  std::unordered_map<const std::byte*, kernels::PackedMatrix> by_data_;
  int n_packed_ = 0, n_skipped_ = 0;
  uint64_t bytes_ = 0;
  double seconds_ = 0;
  kernels::Isa isa_ = kernels::Isa::Scalar;
};

}  // namespace reprise
