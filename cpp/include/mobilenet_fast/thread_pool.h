// A small persistent thread pool for the Plan: no OpenMP runtime, so it cannot clash with the
// one of the process we are loaded into. The calling thread takes part in every job.
//
// Workers wait for a job by spinning for a short, bounded time (jobs of one network run arrive
// back to back, tens of microseconds apart) and then sleep on a condition variable, so an idle
// pool burns no CPU.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace mbf {

class ThreadPool {
 public:
  // threads: total number of threads working on a job, the caller included (>= 1).
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return static_cast<int>(workers_.size()) + 1; }

  // Runs task(i, thread) for every i in [0, count), spread over the pool's threads (thread is in
  // [0, size()), 0 being the caller), and returns when all are done. Not reentrant: one job at a
  // time (the Plan serialises its runs).
  void run(int count, const std::function<void(int task, int thread)>& task);

 private:
  void worker_loop(int thread);
  void work_on(int thread);

  std::vector<std::thread> workers_;
  const std::function<void(int, int)>* task_ = nullptr;
  int count_ = 0;
  std::atomic<int> next_{0};
  std::atomic<int> busy_{0};           // workers still inside the current job
  std::atomic<std::uint64_t> job_{0};  // incremented for every new job
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stop_ = false;
};

}  // namespace mbf
