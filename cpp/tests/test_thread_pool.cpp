// The Plan's thread pool: every task runs exactly once per job, on a valid thread index, and the
// pool survives many back-to-back jobs (the spin/sleep hand-over), idle periods and fork().
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "mobilenet_fast/thread_pool.h"
#include "test_support.h"

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

// Sum of 1..count computed on the pool, with the number of tasks that ran on a worker.
long pool_sum(mbf::ThreadPool& pool, int count, int* on_workers = nullptr) {
  std::atomic<long> sum{0};
  std::atomic<int> workers{0};
  pool.run(count, [&](int i, int t) {
    std::this_thread::sleep_for(std::chrono::microseconds(50));
    sum.fetch_add(i + 1);
    if (t != 0) workers.fetch_add(1);
  });
  if (on_workers) *on_workers = workers.load();
  return sum.load();
}

// A child process inherits the pool but not its workers: the pool must notice, start new workers
// and finish every job (a pool waiting for the parent's workers would spin forever).
TEST(ThreadPoolFork, ChildRestartsItsWorkers) {
  MBF_SKIP_FORK_TEST_UNDER_EMULATOR();
  mbf::ThreadPool pool(3);
  ASSERT_EQ(pool_sum(pool, 40), 820);
  ASSERT_EQ(pool.live_workers(), 2);
  const std::uint64_t generation = mbf::ThreadPool::fork_generation();
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    int code = 0;
    if (mbf::ThreadPool::fork_generation() != generation + 1) code |= 1;
    if (pool.live_workers() != 0) code |= 2;
    int on_workers = 0;
    for (int job = 0; job < 20; ++job)
      if (pool_sum(pool, 40, &on_workers) != 820) code |= 4;
    if (pool.live_workers() != 2) code |= 8;
    _exit(code);  // gtest must not run its own exit handlers in the child
  }
  EXPECT_EQ(mbf_test::wait_for_child(pid, 60), 0) << "-1: the child deadlocked; bits: 1 generation, "
                                                      "2 stale workers, 4 wrong sum, 8 no new workers";
  EXPECT_EQ(mbf::ThreadPool::fork_generation(), generation);
  EXPECT_EQ(pool_sum(pool, 40), 820) << "the parent's pool must keep working";
}

// Destroying an inherited pool must neither join the parent's threads nor destroy a condition
// variable the parent's sleeping workers were waiting on (both can block forever).
TEST(ThreadPoolFork, ChildCanDestroyAnInheritedPool) {
  MBF_SKIP_FORK_TEST_UNDER_EMULATOR();
  for (bool asleep : {false, true}) {
    auto pool = std::make_unique<mbf::ThreadPool>(4);
    ASSERT_EQ(pool_sum(*pool, 16), 136);
    if (asleep) std::this_thread::sleep_for(std::chrono::milliseconds(20));  // workers wait on the condvar
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      pool.reset();
      mbf::ThreadPool fresh(2);  // pools created in the child work as usual
      _exit(pool_sum(fresh, 10) == 55 ? 0 : 1);
    }
    EXPECT_EQ(mbf_test::wait_for_child(pid, 60), 0) << (asleep ? "sleeping workers" : "spinning workers");
  }
}

// A child of a child: the generation counter moves on again.
TEST(ThreadPoolFork, GrandchildRestartsToo) {
  MBF_SKIP_FORK_TEST_UNDER_EMULATOR();
  mbf::ThreadPool pool(2);
  ASSERT_EQ(pool_sum(pool, 10), 55);
  const pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    if (pool_sum(pool, 10) != 55) _exit(1);
    const pid_t grandchild = fork();
    if (grandchild < 0) _exit(2);
    if (grandchild == 0) _exit(pool_sum(pool, 10) == 55 && pool.live_workers() == 1 ? 0 : 1);
    _exit(mbf_test::wait_for_child(grandchild, 30) == 0 ? 0 : 3);
  }
  EXPECT_EQ(mbf_test::wait_for_child(pid, 60), 0);
}

}  // namespace
