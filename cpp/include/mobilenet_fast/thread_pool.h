// A small persistent thread pool for the Plan: no OpenMP runtime, so it cannot clash with the
// one of the process we are loaded into. The calling thread takes part in every job.
//
// Workers wait for a job by spinning for a short, bounded time (jobs of one network run arrive
// back to back, tens of microseconds apart) and then sleep on a condition variable, so an idle
// pool burns no CPU.
//
// fork(): a child process inherits the pool object but none of its worker threads, and the
// pool's mutex and condition variable may have been copied in the middle of an operation. The
// pool notices (a pthread_atfork child handler counts forks) and, on its next run() in the child,
// abandons that state without touching it (it is leaked: destroying a condition variable that had
// waiters in the parent can block forever) and starts fresh workers. If they cannot be started,
// the job runs on the calling thread alone. The destructor of a pool inherited from the parent
// likewise leaks the parent's state instead of joining threads that do not exist.
#pragma once

#include <cstdint>
#include <functional>

namespace mbf {

class ThreadPool {
 public:
  // threads: total number of threads working on a job, the caller included (>= 1). Throws
  // std::system_error (after stopping the workers already started) if a thread cannot be created.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Threads a job is spread over (thread indices passed to tasks are in [0, size())).
  int size() const { return threads_; }

  // Runs task(i, thread) for every i in [0, count), spread over the pool's threads (thread is in
  // [0, size()), 0 being the caller), and returns when all are done. Not reentrant: one job at a
  // time (the Plan serialises its runs).
  void run(int count, const std::function<void(int task, int thread)>& task);

  // Worker threads currently running in this process (size() - 1 normally; 0 in a forked child
  // until the first run(), or if the child could not start threads).
  int live_workers() const;

  // Number of fork() calls this process has gone through as a child (0 in the original process).
  static std::uint64_t fork_generation();

 private:
  struct State;
  void start_workers();

  int threads_;
  State* state_;               // owned; deliberately leaked when inherited through fork()
  std::uint64_t generation_;   // fork_generation() when state_'s workers were started
};

}  // namespace mbf
