// The network schedule shared by plans (see schedule.h): task loop, row and panel parts, fused
// bands, batches, and the fork() registry of plan mutexes.
#include "schedule.h"

#include <algorithm>
#include <atomic>
#include <set>

#if defined(__unix__) || defined(__APPLE__)
#include <pthread.h>
#define MBF_HAVE_PTHREAD_ATFORK 1
#endif

namespace mbf {

void for_tasks(ThreadPool* pool, int count, const std::function<void(int, int)>& task) {
  if (pool) {
    pool->run(count, task);
  } else {
    for (int i = 0; i < count; ++i) task(i, 0);
  }
}

std::pair<int, int> chunk(int total, int parts, int i, int align) {
  const int units = (total + align - 1) / align;
  const int b = static_cast<int>(static_cast<long long>(units) * i / parts) * align;
  const int e = static_cast<int>(static_cast<long long>(units) * (i + 1) / parts) * align;
  return {std::min(b, total), std::min(e, total)};
}

void split_gemm(ThreadPool* pool, int tasks, int m, int mr, int panels,
                const std::function<void(int, int)>& rows, const std::function<void(int, int)>& panels_part) {
  if (tasks <= 1) {
    rows(0, m);
  } else if (m >= tasks * mr || panels < tasks) {
    tasks = std::min(tasks, (m + mr - 1) / mr);
    for_tasks(pool, tasks, [&](int i, int) {
      const auto r = chunk(m, tasks, i, mr);
      if (r.second > r.first) rows(r.first, r.second);
    });
  } else {
    for_tasks(pool, tasks, [&](int i, int) {
      const auto p = chunk(panels, tasks, i, 1);
      if (p.second > p.first) panels_part(p.first, p.second);
    });
  }
}

int fused_band_rows(int out_h, std::size_t row_elems, std::size_t elem_size, int threads) {
  if (out_h * row_elems <= kFuseAboveBytes / elem_size) return 0;
  const int rows = static_cast<int>(std::max<std::size_t>(1, kBandBytes / elem_size / row_elems));
  const int balanced = std::max(1, out_h / (2 * threads));
  // Round the number of bands up to a multiple of the thread count, then share the rows out
  // evenly.
  int bands = (out_h + std::min(rows, balanced) - 1) / std::min(rows, balanced);
  bands = (bands + threads - 1) / threads * threads;
  return std::max(1, (out_h + bands - 1) / bands);
}

bool for_images(ThreadPool* pool, int batch, const std::function<bool(int, int, ThreadPool*)>& image) {
  std::atomic<bool> ok{true};
  if (pool && batch >= pool->size()) {
    pool->run(batch, [&](int n, int thread) {
      if (!image(n, thread, nullptr)) ok.store(false, std::memory_order_relaxed);
    });
    return ok.load();
  }
  for (int n = 0; n < batch; ++n)
    if (!image(n, 0, pool)) ok.store(false, std::memory_order_relaxed);
  return ok.load();
}

namespace {

std::mutex& registry_mutex() {
  static std::mutex* m = new std::mutex;  // never destroyed: usable until the process ends
  return *m;
}
std::set<std::mutex*>& registry() {
  static auto* r = new std::set<std::mutex*>;
  return *r;
}

void lock_all_for_fork() {
  registry_mutex().lock();
  for (std::mutex* m : registry()) m->lock();
}
void unlock_all_after_fork() {
  for (std::mutex* m : registry()) m->unlock();
  registry_mutex().unlock();
}

}  // namespace

void register_for_fork(std::mutex* m) {
#if defined(MBF_HAVE_PTHREAD_ATFORK)
  static const bool handlers = [] {
    pthread_atfork(lock_all_for_fork, unlock_all_after_fork, unlock_all_after_fork);
    return true;
  }();
  (void)handlers;
#endif
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry().insert(m);
}
void unregister_for_fork(std::mutex* m) {
  std::lock_guard<std::mutex> lock(registry_mutex());
  registry().erase(m);
}

}  // namespace mbf
