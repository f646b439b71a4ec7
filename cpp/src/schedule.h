// How a network plan spreads its work over a thread pool, whatever its element type: the task
// loop, the cutting of rows or weight panels into parts, the choice of fused bands, the batch
// schedule, and the fork() registry that keeps the plans' mutexes consistent in a child. The
// fp32 Plan (plan.cpp) uses them; the pieces take callables so another network type can too.
// None of them changes which kernel call computes which output value, so results stay bitwise
// identical for any split.
#pragma once

#include <cstddef>
#include <functional>
#include <mutex>
#include <utility>

#include "mobilenet_fast/thread_pool.h"

namespace mbf {

// Runs task(i, thread) for i in [0, count): on the pool, or inline on this thread as thread 0.
void for_tasks(ThreadPool* pool, int count, const std::function<void(int, int)>& task);

// [begin, end) of part i when `total` items are cut into `parts` nearly equal chunks, each a
// multiple of `align` except the last.
std::pair<int, int> chunk(int total, int parts, int i, int align);

// Splits a GEMM of m output rows and `panels` weight panels over `tasks` parts: by rows when
// every part gets at least one register tile of mr rows (parts are multiples of the tile), else
// by weight panels (the classifier). Calls rows(begin, end) for every non-empty part of rows,
// or panels(begin, end) for every non-empty part of panels; with tasks <= 1, rows(0, m) once on
// this thread.
void split_gemm(ThreadPool* pool, int tasks, int m, int mr, int panels,
                const std::function<void(int, int)>& rows, const std::function<void(int, int)>& panels_part);

// split_gemm for C[m][n] = A[m][k] x B with B packed in panels of nr columns, panel_bytes apart
// (row stride of A: k, of C: n): calls gemm(rows, cols, a, packed, c) for each part, with the
// pointers moved to the part's first row or first panel.
template <class TA, class TC, class Gemm>
void split_packed_gemm(ThreadPool* pool, int tasks, int m, int n, int k, int mr, int nr, std::size_t panel_bytes,
                       const TA* a, const void* packed, TC* c, Gemm&& gemm) {
  const auto* base = static_cast<const unsigned char*>(packed);
  split_gemm(
      pool, tasks, m, mr, (n + nr - 1) / nr,
      [&](int r0, int r1) {
        gemm(r1 - r0, n, a + static_cast<std::ptrdiff_t>(r0) * k, base, c + static_cast<std::ptrdiff_t>(r0) * n);
      },
      [&](int p0, int p1) {
        const int j0 = p0 * nr, j1 = n < p1 * nr ? n : p1 * nr;
        gemm(m, j1 - j0, a, base + static_cast<std::size_t>(p0) * panel_bytes, c + j0);
      });
}

// A depthwise output larger than this is fused with its pointwise layer in bands...
constexpr std::size_t kFuseAboveBytes = 256 * 1024 * 4;
// ... of about this many bytes (the band stays in L2 between the two kernels).
constexpr std::size_t kBandBytes = 32 * 1024 * 4;

// Output rows per band for a depthwise layer of out_h rows of row_elems values (elem_size bytes
// each) fused with the pointwise layer after it, or 0 to leave it unfused (its output stays in
// cache). Keeps at least two bands per thread so the split balances, and a number of bands that
// is a multiple of the thread count, so that every thread gets the same number of equal bands.
int fused_band_rows(int out_h, std::size_t row_elems, std::size_t elem_size, int threads);

// Runs image(n, workspace, layer_pool) for every image n of a batch; returns false if any call
// did. batch >= pool's threads: whole images per thread, each on the workspace of its thread
// and with no layer_pool (no synchronisation); else one image at a time on workspace 0, every
// layer split over layer_pool = pool.
bool for_images(ThreadPool* pool, int batch, const std::function<bool(int, int, ThreadPool*)>& image);

// Every live plan's mutex. Around fork(), the forking thread takes them all (waiting for runs in
// progress in other threads to finish) and releases them in both processes afterwards, so that a
// child never inherits a mutex locked by a thread that does not exist there.
void register_for_fork(std::mutex* m);
void unregister_for_fork(std::mutex* m);

}  // namespace mbf
