#include "mobilenet_fast/thread_pool.h"

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define MBF_HAVE_PTHREAD_ATFORK 1
#endif

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

// Incremented in every child process right after fork(): a pool whose workers were started in an
// earlier generation has no workers in this process.
std::atomic<std::uint64_t> g_fork_generation{0};

void register_fork_handler() {
#if defined(MBF_HAVE_PTHREAD_ATFORK)
  static const bool registered = [] {
    pthread_atfork(nullptr, nullptr, [] { g_fork_generation.fetch_add(1, std::memory_order_relaxed); });
    return true;
  }();
  (void)registered;
#endif
}
}  // namespace

// Everything the workers share with the pool. Replaced (and the old one leaked) after a fork.
struct ThreadPool::State {
  std::vector<std::thread> workers;
  const std::function<void(int, int)>* task = nullptr;
  int count = 0;
  std::atomic<int> next{0};
  std::atomic<int> busy{0};           // workers still inside the current job
  std::atomic<std::uint64_t> job{0};  // incremented for every new job
  std::mutex mutex;
  std::condition_variable wake;
  bool stop = false;

  void work_on(int thread) {
    for (;;) {
      const int i = next.fetch_add(1, std::memory_order_relaxed);
      if (i >= count) return;
      (*task)(i, thread);
    }
  }

  void worker_loop(int thread) {
    std::uint64_t seen = 0;
    for (;;) {
      // Spin a little for the next job, then sleep.
      const auto until = std::chrono::steady_clock::now() + kSpinTime;
      std::uint64_t current = job.load(std::memory_order_acquire);
      for (int spins = 0; current == seen; ++spins) {
        MBF_CPU_RELAX();
        if ((spins & 63) == 63 && std::chrono::steady_clock::now() > until) break;
        current = job.load(std::memory_order_acquire);
      }
      if (current == seen) {
        std::unique_lock<std::mutex> lock(mutex);
        wake.wait(lock, [&] { return job.load(std::memory_order_acquire) != seen; });
        current = job.load(std::memory_order_acquire);
      }
      seen = current;
      {
        std::lock_guard<std::mutex> lock(mutex);
        if (stop) return;
      }
      work_on(thread);
      busy.fetch_sub(1, std::memory_order_acq_rel);
    }
  }

  // Stops and joins every worker of this process.
  void shut_down() {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
      job.fetch_add(1, std::memory_order_release);
    }
    wake.notify_all();
    for (auto& w : workers) w.join();
    workers.clear();
  }
};

std::uint64_t ThreadPool::fork_generation() { return g_fork_generation.load(std::memory_order_relaxed); }

ThreadPool::ThreadPool(int threads) : threads_(threads > 1 ? threads : 1), state_(new State) {
  register_fork_handler();
  generation_ = fork_generation();
  try {
    start_workers();
  } catch (...) {
    state_->shut_down();  // a std::thread still joinable at destruction would terminate the process
    delete state_;
    throw;
  }
}

void ThreadPool::start_workers() {
  State* s = state_;
  s->workers.reserve(static_cast<std::size_t>(threads_ - 1));
  for (int t = 1; t < threads_; ++t) s->workers.emplace_back([s, t] { s->worker_loop(t); });
}

ThreadPool::~ThreadPool() {
  if (generation_ != fork_generation()) return;  // inherited through fork(): leak, see the header
  state_->shut_down();
  delete state_;
}

int ThreadPool::live_workers() const {
  return generation_ == fork_generation() ? static_cast<int>(state_->workers.size()) : 0;
}

void ThreadPool::run(int count, const std::function<void(int, int)>& task) {
  if (count <= 0) return;
  if (generation_ != fork_generation()) {
    // We are in a child process: the workers stayed in the parent. Start new ones here.
    generation_ = fork_generation();
    state_ = new State;  // the old state is leaked on purpose
    try {
      start_workers();
    } catch (...) {
      state_->shut_down();  // could not create threads: run every job on the caller from now on
    }
  }
  State& s = *state_;
  if (s.workers.empty() || count == 1) {
    for (int i = 0; i < count; ++i) task(i, 0);
    return;
  }
  s.task = &task;
  s.count = count;
  s.next.store(0, std::memory_order_relaxed);
  s.busy.store(static_cast<int>(s.workers.size()), std::memory_order_relaxed);
  {
    // The lock orders this job's publication with a worker that is about to sleep.
    std::lock_guard<std::mutex> lock(s.mutex);
    s.job.fetch_add(1, std::memory_order_release);
  }
  s.wake.notify_all();
  s.work_on(0);
  // Every worker leaves the job (busy reaches 0) before the next one may be published. A worker
  // descheduled by an oversubscribed machine gets the core back through yield().
  for (int spins = 0; s.busy.load(std::memory_order_acquire) != 0; ++spins) {
    if (spins < 4096) {
      MBF_CPU_RELAX();
    } else {
      std::this_thread::yield();
    }
  }
  s.task = nullptr;
}

}  // namespace mbf
