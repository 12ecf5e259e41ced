// A persistent pool of worker threads for data-parallel loops (rows of a matmul, heads).
//
// Decode calls parallel_for a few hundred times per token, each for tens of microseconds of
// work, so waking workers through a mutex and condition variable (several microseconds each way)
// would cost a visible share of the token. Workers therefore spin on an atomic generation
// counter for a short while after each job and only then sleep on it (futex), and the caller
// spins for the work to finish.
//
// Work is handed out in a few contiguous chunks per thread that threads claim as they come, so
// a thread the OS has descheduled (a busy machine) delays nobody: the others take its chunks,
// and the caller only ever waits for chunks that were actually claimed.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <thread>
#include <vector>

namespace reprise {

class ThreadPool {
 public:
  // n_threads counts the calling thread: 1 means everything runs inline, no workers.
  explicit ThreadPool(int n_threads = 1);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  static constexpr int kChunksPerThread = 4;

  // Splits [0, n) into contiguous chunks (up to kChunksPerThread per thread, never empty) and
  // calls fn(begin, end) once for each, on the calling thread or a worker, in any order; returns
  // when all are done. A thread may run several chunks. Not re-entrant: fn must not call
  // parallel_for on the same pool, and only one thread may call parallel_for at a time.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

  // Threads to use when the user gives none: the machine's cores.
  static int default_threads();

 private:
  void worker(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  // Claims and runs chunks of the job of generation `gen` until none is left.
  void run_chunks(uint32_t gen);

  // The current job, published by generation_ (atomic because a late worker may read them while
  // the next job is being set up; its claim then fails).
  std::atomic<const std::function<void(int64_t, int64_t)>*> job_{nullptr};
  std::atomic<int64_t> job_n_{0};
  std::atomic<int> n_chunks_{0};
  std::atomic<uint32_t> generation_{0};
  // (generation << 32) | next unclaimed chunk: a claim succeeds only for the current job.
  std::atomic<uint64_t> next_{0};
  std::atomic<int> done_{0};  // chunks of the current job completed
  std::atomic<bool> stop_{false};
};

}  // namespace reprise
