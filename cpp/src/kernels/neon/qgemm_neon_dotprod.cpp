// The dot-product int8 GEMMs (Armv8.2 sdot; this file alone is built with +dotprod, and runs only
// where HWCAP_ASIMDDP says so). Both take the activations as x - 128: the table packs with the
// input zero point minus 128 (KernelTable::qgemm_input_offset), which gives the 128 x column sum
// back through the bias.
//
// - qgemm_neon_dotprod: the shared int8 GEMM (kernels/int8/qgemm.h), 5 x 16 tiles, one broadcast
//   sdot per accumulator and k group.
// - qgemm_neon_dotprod_pipelined: 4 x 16 tiles whose k loop is hand-scheduled assembly, written for
//   in-order cores (Cortex-A55). See the comment above its k loop.
#include <algorithm>
#include <cstring>

#include "kernels/simd/qvec_neon.h"
#include "kernels/int8/qgemm.h"

static_assert(mbf::QVecNeonDot::kMr == mbf::kQgemmMrNeonDot &&
                  mbf::QVecNeonDot::kCols * mbf::QVecNeonDot::kChunks == mbf::kQgemmNrNeonDot,
              "tile");

MBF_DEFINE_QGEMM(QVecNeonDot, qgemm_neon_dotprod, qgemm_neon_dotprod_f32)

namespace mbf {
namespace {

// ---- the pipelined k loop ------------------------------------------------------------------------
// A tile is 4 rows x 16 columns: accumulator v(4r + c) holds row r, columns 4c..4c+3. The k loop
// goes 16 k (a "chunk", 4 groups of 4) per step: each row's 16 activations are one q register
// (set A: v16-v19, set B: v20-v23, alternating chunks), and each weight register v24-v27 holds
// one group of 4 columns, consumed by sdot by lane (`sdot acc, w, x.4b[g]`).
//
// Written for the Cortex-A55's model in llvm-mca (bench/arm_model.py; the in-order A55 issues a
// 128-bit sdot together with a load only in the forms used here, register-offset `ldr q`):
// - every weight register is reloaded for the next group right after its 4th use, 12 sdots before
//   it is read again, and the next chunk's activations are loaded one chunk ahead into the other
//   set, so no load's latency is waited for;
// - the only other instructions per chunk are one add (the next chunk's offset) and the loop's
//   subs/branch: the weight slots use 16 base registers (x11-x17, x19-x27, weights + 16 j) with the
//   chunk offset scaled by 16 (`lsl #4`: 256 weight bytes per 16 activation bytes).
// Model: 90% of the A55's sdot peak, 100% of the N1's (bench/README.md).
//
// The loop reads one chunk ahead: 16 bytes after each row's last chunk (the caller's scratch has
// room) and 64 bytes after the panel's last full chunk (a later group of the panel, the next
// panel, or kQgemmPackSlack bytes at the end of every packed buffer).
#define MBF_DOT_COL(c0, c1, c2, c3, w, g, a0, a1, a2, a3) \
  "sdot v" #c0 ".4s, v" #w ".16b, v" #a0 ".4b[" #g "]\n\t"  \
  "sdot v" #c1 ".4s, v" #w ".16b, v" #a1 ".4b[" #g "]\n\t"  \
  "sdot v" #c2 ".4s, v" #w ".16b, v" #a2 ".4b[" #g "]\n\t"  \
  "sdot v" #c3 ".4s, v" #w ".16b, v" #a3 ".4b[" #g "]\n\t"
#define MBF_LDW(q, base, off) "ldr q" #q ", [" #base ", " #off ", lsl #4]\n\t"
#define MBF_LDA(q, base, off) "ldr q" #q ", [" #base ", " #off "]\n\t"
// One chunk: activations in v(a0..a3), the next chunk's go to v(n0..n3); this chunk's offset in
// register cur, the next one's is written to nxt.
#define MBF_DOT_CHUNK(a0, a1, a2, a3, n0, n1, n2, n3, cur, nxt)                                       \
  MBF_DOT_COL(0, 4, 8, 12, 24, 0, a0, a1, a2, a3) MBF_LDW(24, x15, cur)                               \
  MBF_DOT_COL(1, 5, 9, 13, 25, 0, a0, a1, a2, a3) MBF_LDW(25, x16, cur)                               \
  MBF_DOT_COL(2, 6, 10, 14, 26, 0, a0, a1, a2, a3) MBF_LDW(26, x17, cur)                              \
  MBF_DOT_COL(3, 7, 11, 15, 27, 0, a0, a1, a2, a3) MBF_LDW(27, x19, cur) "add " #nxt ", " #cur ", #16\n\t" \
  MBF_DOT_COL(0, 4, 8, 12, 24, 1, a0, a1, a2, a3) MBF_LDW(24, x20, cur) MBF_LDA(n0, x5, nxt)          \
  MBF_DOT_COL(1, 5, 9, 13, 25, 1, a0, a1, a2, a3) MBF_LDW(25, x21, cur) MBF_LDA(n1, x6, nxt)          \
  MBF_DOT_COL(2, 6, 10, 14, 26, 1, a0, a1, a2, a3) MBF_LDW(26, x22, cur) MBF_LDA(n2, x7, nxt)         \
  MBF_DOT_COL(3, 7, 11, 15, 27, 1, a0, a1, a2, a3) MBF_LDW(27, x23, cur) MBF_LDA(n3, x8, nxt)         \
  MBF_DOT_COL(0, 4, 8, 12, 24, 2, a0, a1, a2, a3) MBF_LDW(24, x24, cur)                               \
  MBF_DOT_COL(1, 5, 9, 13, 25, 2, a0, a1, a2, a3) MBF_LDW(25, x25, cur)                               \
  MBF_DOT_COL(2, 6, 10, 14, 26, 2, a0, a1, a2, a3) MBF_LDW(26, x26, cur)                              \
  MBF_DOT_COL(3, 7, 11, 15, 27, 2, a0, a1, a2, a3) MBF_LDW(27, x27, cur)                              \
  MBF_DOT_COL(0, 4, 8, 12, 24, 3, a0, a1, a2, a3) MBF_LDW(24, x11, nxt)                               \
  MBF_DOT_COL(1, 5, 9, 13, 25, 3, a0, a1, a2, a3) MBF_LDW(25, x12, nxt)                               \
  MBF_DOT_COL(2, 6, 10, 14, 26, 3, a0, a1, a2, a3) MBF_LDW(26, x13, nxt)                              \
  MBF_DOT_COL(3, 7, 11, 15, 27, 3, a0, a1, a2, a3) MBF_LDW(27, x14, nxt)

// acc[16] += the 4 x 16 tile's products over `chunks` (>= 1) chunks of 16 k: activations of row r at
// a + r * stride (already x - 128), weights at w (the panel's first k group).
void dot_chunks_4x16(int32x4_t* acc, const std::uint8_t* a, std::ptrdiff_t stride, const std::int8_t* w,
                     std::size_t chunks) {
  asm volatile(
      "mov x5, %[a]\n\t"
      "add x6, x5, %[s]\n\t"
      "add x7, x6, %[s]\n\t"
      "add x8, x7, %[s]\n\t"
      "mov x11, %[w]\n\t"
      "add x12, x11, #16\n\t"
      "add x13, x11, #32\n\t"
      "add x14, x11, #48\n\t"
      "add x15, x11, #64\n\t"
      "add x16, x11, #80\n\t"
      "add x17, x11, #96\n\t"
      "add x19, x11, #112\n\t"
      "add x20, x11, #128\n\t"
      "add x21, x11, #144\n\t"
      "add x22, x11, #160\n\t"
      "add x23, x11, #176\n\t"
      "add x24, x11, #192\n\t"
      "add x25, x11, #208\n\t"
      "add x26, x11, #224\n\t"
      "add x27, x11, #240\n\t"
      "mov x9, %[acc]\n\t"
      "ld1 {v0.4s, v1.4s, v2.4s, v3.4s}, [x9], #64\n\t"
      "ld1 {v4.4s, v5.4s, v6.4s, v7.4s}, [x9], #64\n\t"
      "ld1 {v8.4s, v9.4s, v10.4s, v11.4s}, [x9], #64\n\t"
      "ld1 {v12.4s, v13.4s, v14.4s, v15.4s}, [x9]\n\t"
      "ldr q24, [x11]\n\t"
      "ldr q25, [x12]\n\t"
      "ldr q26, [x13]\n\t"
      "ldr q27, [x14]\n\t"
      "mov x9, #0\n\t"
      "mov x10, #0\n\t"
      // an odd number of chunks starts in the second half of the loop, on set B
      "tbz %[n], #0, 1f\n\t"
      "ldr q20, [x5]\n\t"
      "ldr q21, [x6]\n\t"
      "ldr q22, [x7]\n\t"
      "ldr q23, [x8]\n\t"
      "b 2f\n"
      "1:\n\t"
      "ldr q16, [x5]\n\t"
      "ldr q17, [x6]\n\t"
      "ldr q18, [x7]\n\t"
      "ldr q19, [x8]\n"
      ".Lmbf_dot_chunks%=:\n\t"
      MBF_DOT_CHUNK(16, 17, 18, 19, 20, 21, 22, 23, x9, x10)
      "subs %[n], %[n], #1\n\t"
      "b.eq 3f\n"
      "2:\n\t"
      MBF_DOT_CHUNK(20, 21, 22, 23, 16, 17, 18, 19, x10, x9)
      "subs %[n], %[n], #1\n\t"
      "b.ne .Lmbf_dot_chunks%=\n"
      "3:\n\t"
      "mov x9, %[acc]\n\t"
      "st1 {v0.4s, v1.4s, v2.4s, v3.4s}, [x9], #64\n\t"
      "st1 {v4.4s, v5.4s, v6.4s, v7.4s}, [x9], #64\n\t"
      "st1 {v8.4s, v9.4s, v10.4s, v11.4s}, [x9], #64\n\t"
      "st1 {v12.4s, v13.4s, v14.4s, v15.4s}, [x9]\n\t"
      : [n] "+r"(chunks)
      : [acc] "r"(acc), [a] "r"(a), [s] "r"(stride), [w] "r"(w)
      : "x5", "x6", "x7", "x8", "x9", "x10", "x11", "x12", "x13", "x14", "x15", "x16", "x17", "x19", "x20", "x21",
        "x22", "x23", "x24", "x25", "x26", "x27", "v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7", "v8", "v9", "v10",
        "v11", "v12", "v13", "v14", "v15", "v16", "v17", "v18", "v19", "v20", "v21", "v22", "v23", "v24", "v25",
        "v26", "v27", "cc", "memory");
}
#undef MBF_DOT_CHUNK
#undef MBF_LDA
#undef MBF_LDW
#undef MBF_DOT_COL

constexpr int kRows = 4, kNr = kQgemmNrNeonDot;
// Longest k the pipelined kernel takes (its activations are copied to the stack); longer ones go
// to qgemm_neon_dotprod.
constexpr int kMaxK = 4096;

template <class Out>
void qgemm_pipelined(int m, int n, int k, const std::uint8_t* a, Index lda, const void* packed, typename Out::T* c,
                     Index ldc, QuantOut out, const std::int32_t* row_add) {
  if (m <= 0 || n <= 0) return;
  const int groups = (k + kQgemmKr - 1) / kQgemmKr, chunks = groups / 4, rest = groups % 4;
  const Index panel_bytes = kNr * (2 * static_cast<Index>(sizeof(std::int32_t)) + groups * kQgemmKr);
  const Index stride = (groups * kQgemmKr + 15) / 16 * 16 + 16;  // a row, padded, + the read-ahead
  const auto* base = static_cast<const unsigned char*>(packed);
  const QVecNeonDot::Params q = QVecNeonDot::params(out);
  alignas(16) std::uint8_t x[kRows * (kMaxK + 32)];
  for (int i0 = 0; i0 < m; i0 += kRows) {
    const int rows = std::min(kRows, m - i0);
    // The tile's activations, x - 128, zero past k (the weights there are zero too) and in rows
    // past m (computed, never stored).
    std::memset(x, 0, static_cast<std::size_t>(kRows * stride));
    for (int r = 0; r < rows; ++r) {
      const std::uint8_t* src = a + (i0 + r) * lda;
      std::uint8_t* dst = x + r * stride;
      int p = 0;
      for (; p + 16 <= k; p += 16) vst1q_u8(dst + p, veorq_u8(vld1q_u8(src + p), vdupq_n_u8(0x80)));
      for (; p < k; ++p) dst[p] = static_cast<std::uint8_t>(src[p] ^ 0x80);
    }
    for (int j = 0, cols = n; cols > 0; ++j, cols -= kNr) {
      const unsigned char* panel = base + j * panel_bytes;
      const auto* bias = reinterpret_cast<const std::int32_t*>(panel);
      const auto* scale = reinterpret_cast<const float*>(panel + sizeof(std::int32_t) * kNr);
      const auto* w = reinterpret_cast<const std::int8_t*>(panel + 2 * sizeof(std::int32_t) * kNr);
      int32x4_t acc[kRows * 4];
      for (int r = 0; r < kRows; ++r)
        for (int v = 0; v < 4; ++v) acc[r * 4 + v] = vld1q_s32(bias + v * 4);
      if (chunks) dot_chunks_4x16(acc, x, stride, w, static_cast<std::size_t>(chunks));
      for (int g = chunks * 4; g < chunks * 4 + rest; ++g) {
        const std::int8_t* wg = w + g * kNr * kQgemmKr;
        for (int r = 0; r < kRows; ++r) {
          std::uint32_t v4;
          std::memcpy(&v4, x + r * stride + g * kQgemmKr, sizeof v4);
          const int8x16_t xa = vreinterpretq_s8_u32(vdupq_n_u32(v4));
          for (int v = 0; v < 4; ++v) acc[r * 4 + v] = vdotq_s32(acc[r * 4 + v], xa, vld1q_s8(wg + v * 16));
        }
      }
      for (int r = 0; r < rows; ++r) {
        const std::int32_t add = row_add ? row_add[i0 + r] : 0;
        for (int v = 0; v < 4 && v * 4 < cols; ++v) {
          typename Out::T* dst = c + (i0 + r) * ldc + j * kNr + v * 4;
          if constexpr (std::is_same_v<Out, QgemmToF32>)
            QVecNeonDot::store_f32(dst, acc[r * 4 + v], nullptr, scale + v * 4, cols - v * 4, add);
          else
            QVecNeonDot::store(dst, acc[r * 4 + v], nullptr, scale + v * 4, q, cols - v * 4, add);
        }
      }
    }
  }
}

}  // namespace

void qgemm_neon_dotprod_pipelined(int m, int n, int k, const std::uint8_t* a, std::ptrdiff_t lda, const void* packed,
                                  std::uint8_t* c, std::ptrdiff_t ldc, QuantOut out, const std::int32_t* row_add) {
  if (k > kMaxK) return qgemm_neon_dotprod(m, n, k, a, lda, packed, c, ldc, out, row_add);
  qgemm_pipelined<QgemmToU8>(m, n, k, a, lda, packed, c, ldc, out, row_add);
}

void qgemm_neon_dotprod_pipelined_f32(int m, int n, int k, const std::uint8_t* a, std::ptrdiff_t lda,
                                      const void* packed, float* c, std::ptrdiff_t ldc, const std::int32_t* row_add) {
  if (k > kMaxK) return qgemm_neon_dotprod_f32(m, n, k, a, lda, packed, c, ldc, row_add);
  qgemm_pipelined<QgemmToF32>(m, n, k, a, lda, packed, c, ldc, QuantOut{0, 0, 255}, row_add);
}

}  // namespace mbf
