// A persistent pool of worker threads for data-parallel loops (rows of a matmul, heads).
//
// Decode calls parallel_for a few hundred times per token, each for tens of microseconds of
// work, so waking workers through a mutex and condition variable (several microseconds each way)
// would cost a visible share of the token. Workers therefore spin on an atomic generation
// counter for a short while after each job and only then sleep on it (futex), and the caller
// spins for the workers to finish.
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

  // Splits [0, n) into contiguous chunks, one per thread (chunk k goes to thread k, the caller
  // being thread 0), and calls fn(begin, end) for each; returns when all are done. Not
  // re-entrant: fn must not call parallel_for on the same pool, and only one thread may call
  // parallel_for at a time.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn);

  // Threads to use when the user gives none: the machine's cores.
  static int default_threads();

 private:
  void worker(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  const std::function<void(int64_t, int64_t)>* job_ = nullptr;  // published by generation_
  int64_t job_n_ = 0;
  std::atomic<uint32_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace reprise
