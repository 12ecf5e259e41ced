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
  const uint32_t gen = generation_.load(std::memory_order_relaxed) + 1;
  const int chunks = static_cast<int>(std::min<int64_t>(n, int64_t{n_threads_} * kChunksPerThread));
  job_.store(&fn, std::memory_order_relaxed);
  job_n_.store(n, std::memory_order_relaxed);
  n_chunks_.store(chunks, std::memory_order_relaxed);
  done_.store(0, std::memory_order_relaxed);
  next_.store(static_cast<uint64_t>(gen) << 32, std::memory_order_release);
  generation_.store(gen, std::memory_order_release);  // publishes the job to the workers
  generation_.notify_all();
  run_chunks(gen);
  for (;;) {
    if (spin_until([&] { return done_.load(std::memory_order_acquire) == chunks; })) break;
    const int d = done_.load(std::memory_order_acquire);
    if (d == chunks) break;
    done_.wait(d, std::memory_order_acquire);
  }
}

void ThreadPool::run_chunks(uint32_t gen) {
  // job_, job_n_ and n_chunks_ may be read before the claim: if they already belong to a later
  // job, that job was published after this one finished, and the claim below fails.
  const auto* job = job_.load(std::memory_order_relaxed);
  const int64_t n = job_n_.load(std::memory_order_relaxed);
  const int chunks = n_chunks_.load(std::memory_order_relaxed);
  uint64_t cur = next_.load(std::memory_order_acquire);
  for (;;) {
    if (static_cast<uint32_t>(cur >> 32) != gen) return;
    const int c = static_cast<int>(cur & 0xFFFFFFFFu);
    if (c >= chunks) return;
    if (!next_.compare_exchange_weak(cur, cur + 1, std::memory_order_acq_rel,
                                     std::memory_order_acquire))
      continue;
    auto [b, e] = chunk(n, chunks, c);
    (*job)(b, e);
    if (done_.fetch_add(1, std::memory_order_acq_rel) + 1 == chunks) done_.notify_one();
    cur = next_.load(std::memory_order_acquire);
  }
}

void ThreadPool::worker(int) {
  uint32_t seen = 0;  // the generation at construction: no job can be missed
  for (;;) {
    if (!spin_until([&] { return generation_.load(std::memory_order_acquire) != seen; }))
      generation_.wait(seen, std::memory_order_acquire);
    const uint32_t g = generation_.load(std::memory_order_acquire);
    if (g == seen) continue;  // spurious wake-up
    seen = g;
    if (stop_.load(std::memory_order_acquire)) return;
    run_chunks(g);
  }
}

}  // namespace reprise
