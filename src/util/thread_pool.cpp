#include "util/thread_pool.h"

#include <algorithm>
#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define REPRISE_CPU_RELAX() _mm_pause()
#else
#define REPRISE_CPU_RELAX() std::this_thread::yield()
#endif

namespace reprise {

namespace {

// How long an idle thread spins before sleeping: long enough to bridge the gaps between the
// parallel loops of one forward pass (norms, sampling), short enough not to burn a core while
// the program waits for input.
constexpr auto kSpinTime = std::chrono::microseconds(300);

std::pair<int64_t, int64_t> chunk(int64_t n, int parts, int k) {
  int64_t base = n / parts, extra = n % parts;
  int64_t begin = k * base + std::min<int64_t>(k, extra);
  return {begin, begin + base + (k < extra ? 1 : 0)};
}

// Spins until pred() holds or kSpinTime passes; returns pred().
template <class Pred>
bool spin_until(Pred pred) {
  const auto deadline = std::chrono::steady_clock::now() + kSpinTime;
  for (;;) {
    for (int i = 0; i < 64; ++i) {
      if (pred()) return true;
      REPRISE_CPU_RELAX();
    }
    if (std::chrono::steady_clock::now() > deadline) return pred();
  }
}

}  // namespace

ThreadPool::ThreadPool(int n_threads) : n_threads_(std::max(1, n_threads)) {
  for (int k = 1; k < n_threads_; ++k) workers_.emplace_back([this, k] { worker(k); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true, std::memory_order_release);
  generation_.fetch_add(1, std::memory_order_acq_rel);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

int ThreadPool::default_threads() {
  return std::max(1u, std::thread::hardware_concurrency());
}

void ThreadPool::parallel_for(int64_t n, const std::function<void(int64_t, int64_t)>& fn) {
  if (n <= 0) return;
  if (n_threads_ == 1 || n == 1) {
    fn(0, n);
    return;
  }
  job_ = &fn;
  job_n_ = n;
  pending_.store(n_threads_ - 1, std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);  // publishes job_, job_n_, pending_
  generation_.notify_all();
  auto [b, e] = chunk(n, n_threads_, 0);
  if (b < e) fn(b, e);
  for (;;) {
    if (spin_until([this] { return pending_.load(std::memory_order_acquire) == 0; })) break;
    const int left = pending_.load(std::memory_order_acquire);
    if (left == 0) break;
    pending_.wait(left, std::memory_order_acquire);
  }
  job_ = nullptr;
}

void ThreadPool::worker(int index) {
  uint32_t seen = 0;  // the generation at construction: no job can be missed
  for (;;) {
    if (!spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; }))
      generation_.wait(seen, std::memory_order_acquire);
    const uint32_t g = generation_.load(std::memory_order_acquire);
    if (g == seen) continue;  // spurious wake-up
    seen = g;
    if (stop_.load(std::memory_order_acquire)) return;
    auto [b, e] = chunk(job_n_, n_threads_, index);
    if (b < e) (*job_)(b, e);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_one();
  }
}

}  // namespace reprise
