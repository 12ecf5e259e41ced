// The thread pool must hand every index of a job to exactly one call, in non-empty contiguous
// ranges, job after job (the pool is reused for hundreds of loops per token).
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "util/thread_pool.h"

namespace reprise {
namespace {

TEST(ThreadPool, EveryIndexRunsExactlyOnce) {
  for (int threads : {1, 2, 3, 5}) {
    ThreadPool pool(threads);
    for (int64_t n : {int64_t{1}, int64_t{2}, int64_t{3}, int64_t{7}, int64_t{64}, int64_t{1000},
                      int64_t{151936}}) {
      SCOPED_TRACE("threads " + std::to_string(threads) + " n " + std::to_string(n));
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      std::atomic<int> calls{0}, empty{0};
      pool.parallel_for(n, [&](int64_t b, int64_t e) {
        ++calls;
        if (e <= b) ++empty;
        for (int64_t i = b; i < e; ++i) ++hits[static_cast<size_t>(i)];
      });
      int wrong = 0;
      for (const auto& h : hits) wrong += h.load() != 1;
      EXPECT_EQ(wrong, 0);
      EXPECT_EQ(empty.load(), 0);
      EXPECT_LE(calls.load(), n);
      if (threads == 1 || n == 1) {
        EXPECT_EQ(calls.load(), 1);  // inline, one call
      }
    }
  }
}

TEST(ThreadPool, ManyShortJobsInARowAllComplete) {
  ThreadPool pool(2);
  int64_t total = 0;
  std::mutex m;
  for (int job = 0; job < 20000; ++job) {
    int64_t sum = 0;
    pool.parallel_for(17, [&](int64_t b, int64_t e) {
      int64_t local = 0;
      for (int64_t i = b; i < e; ++i) local += i;
      std::lock_guard lock(m);
      sum += local;
    });
    total += sum;
  }
  EXPECT_EQ(total, int64_t{20000} * (16 * 17 / 2));
}

TEST(ThreadPool, NothingToDoCallsNothing) {
  ThreadPool pool(2);
  int calls = 0;
  pool.parallel_for(0, [&](int64_t, int64_t) { ++calls; });
  pool.parallel_for(-3, [&](int64_t, int64_t) { ++calls; });
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace reprise
