// N generation slots over one shared, read-only Model, and a bounded queue in front of them.
//
// Each slot is a Session with its own KV cache and scratch, so N requests generate at once
// without touching each other's state. Admission is two-step so that "queue full" can still be
// answered with a 503 before a response starts: reserve() takes a place (running or waiting)
// or fails at once; Reservation::acquire() then waits for a free slot.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "engine/session.h"

namespace reprise::serve {

struct SlotStats {
  int slots = 0;
  int busy = 0;
  int waiting = 0;
  int max_waiting = 0;
};

class SlotPool {
 public:
  // Creates n_slots sessions on `default_path` (each allocates its KV cache now).
  SlotPool(const Model& model, const LayerPath& default_path, int n_slots, int max_waiting,
           const SessionOptions& opts);
  ~SlotPool();
  SlotPool(const SlotPool&) = delete;
  SlotPool& operator=(const SlotPool&) = delete;

  class Lease;
  class Reservation;

  // A place among the running and waiting requests, or nullptr when all are taken.
  std::unique_ptr<Reservation> reserve();

  SlotStats stats() const;
  int n_ctx() const { return sessions_.front()->n_ctx(); }

 private:
  friend class Lease;
  friend class Reservation;
  void release_slot(int index);
  void cancel_reservation();

  std::vector<std::unique_ptr<Session>> sessions_;
  std::vector<int> free_;      // indices of idle slots
  std::deque<uint64_t> line_;  // tickets of the reservations waiting in acquire(), oldest first
  uint64_t next_ticket_ = 0;
  int max_waiting_;
  int admitted_ = 0;  // reservations alive (waiting or holding a slot)
  int busy_ = 0;
  mutable std::mutex mu_;
  std::condition_variable slot_freed_;
};

// A slot held by one request; returned to the pool on destruction.
class SlotPool::Lease {
 public:
  Lease(SlotPool& pool, int index) : pool_(pool), index_(index) {}
  ~Lease();
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  Session& session() { return *pool_.sessions_[index_]; }
  int index() const { return index_; }

 private:
  SlotPool& pool_;
  int index_;
};

class SlotPool::Reservation {
 public:
  explicit Reservation(SlotPool& pool) : pool_(pool) {}
  ~Reservation();
  Reservation(const Reservation&) = delete;
  Reservation& operator=(const Reservation&) = delete;

  // Waits for a free slot, calling `keep_waiting` every `poll` (it returns false to give up, e.g.
  // when the client went away); nullptr then. A reservation is used at most once.
  std::unique_ptr<Lease> acquire(const std::function<bool()>& keep_waiting,
                                 std::chrono::milliseconds poll = std::chrono::milliseconds(50));

 private:
  SlotPool& pool_;
  bool used_ = false;
};

}  // namespace reprise::serve
