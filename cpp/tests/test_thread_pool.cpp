// The Plan's thread pool: every task runs exactly once per job, on a valid thread index, and the
// pool survives many back-to-back jobs (the spin/sleep hand-over) and idle periods.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <vector>

#include "mobilenet_fast/thread_pool.h"

namespace {

TEST(ThreadPool, EveryTaskRunsOnceOnAValidThread) {
  for (int threads : {1, 2, 3, 8}) {
    mbf::ThreadPool pool(threads);
    ASSERT_EQ(pool.size(), threads);
    for (int count : {0, 1, 2, 7, 100}) {
      std::vector<std::atomic<int>> hits(static_cast<std::size_t>(count));
      std::atomic<bool> bad_thread{false};
      pool.run(count, [&](int i, int t) {
        hits[static_cast<std::size_t>(i)].fetch_add(1);
        if (t < 0 || t >= threads) bad_thread = true;
      });
      for (int i = 0; i < count; ++i) EXPECT_EQ(hits[static_cast<std::size_t>(i)].load(), 1) << "task " << i;
      EXPECT_FALSE(bad_thread.load());
    }
  }
}

TEST(ThreadPool, ManyJobsAndIdleGaps) {
  mbf::ThreadPool pool(3);
  std::atomic<long> sum{0};
  for (int job = 0; job < 2000; ++job) {
    pool.run(5, [&](int i, int) { sum.fetch_add(i + 1); });
    if (job % 500 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(2));  // workers fall asleep
  }
  EXPECT_EQ(sum.load(), 2000L * 15);
}

TEST(ThreadPool, WorkersReallyShareTheWork) {
  mbf::ThreadPool pool(2);
  std::atomic<int> on_worker{0};
  for (int job = 0; job < 50 && on_worker.load() == 0; ++job)
    pool.run(8, [&](int, int t) {
      std::this_thread::sleep_for(std::chrono::microseconds(200));
      if (t != 0) on_worker.fetch_add(1);
    });
  EXPECT_GT(on_worker.load(), 0) << "no task ever ran on the worker thread";
}

}  // namespace
