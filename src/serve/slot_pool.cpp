#include "serve/slot_pool.h"

#include <algorithm>

namespace reprise::serve {

SlotPool::SlotPool(const Model& model, const LayerPath& default_path, int n_slots, int max_waiting,
                   const SessionOptions& opts)
    : max_waiting_(std::max(0, max_waiting)) {
  for (int i = 0; i < std::max(1, n_slots); ++i) {
    sessions_.push_back(std::make_unique<Session>(model, default_path, opts));
    // Prompts run as `reprise eval` runs them (batch-invariant prefill; decode stays fast), so
    // echoed log-probabilities and greedy completions equal eval's bit for bit.
    sessions_.back()->set_batch_invariant(true);
    free_.push_back(i);
  }
}

SlotPool::~SlotPool() = default;

std::unique_ptr<SlotPool::Reservation> SlotPool::reserve() {
  std::lock_guard lock(mu_);
  if (admitted_ >= static_cast<int>(sessions_.size()) + max_waiting_) return nullptr;
  ++admitted_;
  return std::make_unique<Reservation>(*this);
}

SlotStats SlotPool::stats() const {
  std::lock_guard lock(mu_);
  return {static_cast<int>(sessions_.size()), busy_, admitted_ - busy_, max_waiting_};
}

void SlotPool::release_slot(int index) {
  {
    std::lock_guard lock(mu_);
    free_.push_back(index);
    --busy_;
    --admitted_;
  }
  slot_freed_.notify_all();
}

void SlotPool::cancel_reservation() {
  {
    std::lock_guard lock(mu_);
    --admitted_;
  }
  slot_freed_.notify_all();
}

SlotPool::Lease::~Lease() {
  pool_.release_slot(index_);
}

SlotPool::Reservation::~Reservation() {
  if (!used_) pool_.cancel_reservation();
}

std::unique_ptr<SlotPool::Lease> SlotPool::Reservation::acquire(
    const std::function<bool()>& keep_waiting, std::chrono::milliseconds poll) {
  if (used_) return nullptr;
  used_ = true;
  SlotPool& p = pool_;
  // First come, first served: a waiter takes a slot only at the head of the line, so that
  // latency under load does not depend on which thread the scheduler wakes.
  std::unique_lock lock(p.mu_);
  const uint64_t ticket = p.next_ticket_++;
  p.line_.push_back(ticket);
  for (;;) {
    if (!p.free_.empty() && p.line_.front() == ticket) {
      p.line_.pop_front();
      const int index = p.free_.back();
      p.free_.pop_back();
      ++p.busy_;
      lock.unlock();
      p.slot_freed_.notify_all();  // the next in line may find another free slot
      return std::make_unique<Lease>(p, index);
    }
    p.slot_freed_.wait_for(lock, poll);
    lock.unlock();
    const bool go_on = keep_waiting ? keep_waiting() : true;
    lock.lock();
    if (!go_on) {
      p.line_.erase(std::find(p.line_.begin(), p.line_.end(), ticket));
      --p.admitted_;
      lock.unlock();
      p.slot_freed_.notify_all();
      return nullptr;
    }
  }
}

}  // namespace reprise::serve
