#include "mobilenet_fast/thread_pool.h"

#include <chrono>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define MBF_CPU_RELAX() _mm_pause()
#elif defined(__aarch64__) || defined(__arm__)
#define MBF_CPU_RELAX() __asm__ __volatile__("yield")
#else
#define MBF_CPU_RELAX() ((void)0)
#endif

namespace mbf {

namespace {
// How long an idle worker spins for the next job before it sleeps.
constexpr auto kSpinTime = std::chrono::microseconds(200);
}  // namespace

ThreadPool::ThreadPool(int threads) {
  const int extra = threads > 1 ? threads - 1 : 0;
  workers_.reserve(static_cast<std::size_t>(extra));
  for (int t = 1; t <= extra; ++t) workers_.emplace_back([this, t] { worker_loop(t); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
    job_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  for (auto& w : workers_) w.join();
}

void ThreadPool::work_on(int thread) {
  for (;;) {
    const int i = next_.fetch_add(1, std::memory_order_relaxed);
    if (i >= count_) return;
    (*task_)(i, thread);
  }
}

void ThreadPool::run(int count, const std::function<void(int, int)>& task) {
  if (count <= 0) return;
  if (workers_.empty() || count == 1) {
    for (int i = 0; i < count; ++i) task(i, 0);
    return;
  }
  task_ = &task;
  count_ = count;
  next_.store(0, std::memory_order_relaxed);
  busy_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  {
    // The lock orders this job's publication with a worker that is about to sleep.
    std::lock_guard<std::mutex> lock(mutex_);
    job_.fetch_add(1, std::memory_order_release);
  }
  wake_.notify_all();
  work_on(0);
  // Every worker leaves the job (busy_ reaches 0) before the next one may be published. A worker
  // descheduled by an oversubscribed machine gets the core back through yield().
  for (int spins = 0; busy_.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < 4096) {
      MBF_CPU_RELAX();
    } else {
      std::this_thread::yield();
    }
  }
  task_ = nullptr;
}

void ThreadPool::worker_loop(int thread) {
  std::uint64_t seen = 0;
  for (;;) {
    // Spin a little for the next job, then sleep.
    const auto until = std::chrono::steady_clock::now() + kSpinTime;
    std::uint64_t job = job_.load(std::memory_order_acquire);
    for (int spins = 0; job == seen; ++spins) {
      MBF_CPU_RELAX();
      if ((spins & 63) == 63 && std::chrono::steady_clock::now() > until) break;
      job = job_.load(std::memory_order_acquire);
    }
    if (job == seen) {
      std::unique_lock<std::mutex> lock(mutex_);
      wake_.wait(lock, [&] { return job_.load(std::memory_order_acquire) != seen; });
      job = job_.load(std::memory_order_acquire);
    }
    seen = job;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (stop_) return;
    }
    work_on(thread);
    busy_.fetch_sub(1, std::memory_order_acq_rel);
  }
}

}  // namespace mbf
