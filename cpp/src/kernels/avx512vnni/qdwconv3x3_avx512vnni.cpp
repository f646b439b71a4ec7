// qdwconv3x3_s1/s2_avx512_vnni_16c: int8 depthwise 3x3 on AVX-512 VNNI, the three kernel rows of
// a column in one vpdpbusd.
//
// vpdpbusd multiplies the 4 uint8 bytes of each int32 lane of one operand by the 4 int8 bytes of
// the other's and adds the four products to the accumulator's lane, exactly. For 16 channels (one
// lane each) the kernel builds, per input column iw, the "column" (x[ih0][iw], x[ih0 + 1][iw],
// x[ih0 + 2][iw], 0) of raw uint8 inputs, and the weights (w[0][kw], w[1][kw], w[2][kw], 0) of
// each kernel column kw: an output pixel is then 3 vpdpbusd, one per kernel column, and each
// input column serves every output pixel that reads it (3 with stride 1). The inputs are not
// shifted by their zero point zx; instead the bias absorbs -zx * (sum of the 9 weights), and a
// tap in the padding (a column left or right of the image, a row above or below it) reads zx,
// which then adds exactly nothing, as a padding of zero points must.
//
// Exactness: the products (<= 255 * 128) and every int32 sum are exact, so the result is the same
// bits as the scalar reference's (requantisation: QVecAvx512::requant, the float32 operations of
// every int8 kernel). The depthwise weights are int8 (-128..127, what vpdpbusd takes); weights
// arrive packed by pack_qdwconv3x3_weights (C int32 biases, C float32 scales, 9 x C int16). The
// last block of channels is masked (loads and stores): no byte outside the input or output is
// touched. Loop order: channel blocks outside, rows inside, so a block's weights are built once
// per call.
#include "kernels/kernels_internal.h"
#include "kernels/simd/qvec_avx512.h"
#include "kernels/simd/vec_common.h"

namespace mbf {
namespace {

constexpr int kLanes = 16;

template <int S>
void qdw_avx512vnni(const Conv2dGeom& g, const std::uint8_t* in, std::int32_t zx, const void* packed,
                    std::uint8_t* out, int row_begin, int row_end, QuantOut qo) {
  const int C = g.in_channels;
  const auto* base = static_cast<const unsigned char*>(packed);
  const auto* bias = reinterpret_cast<const std::int32_t*>(base);
  const auto* scale = reinterpret_cast<const float*>(base + sizeof(std::int32_t) * C);
  const auto* w = reinterpret_cast<const std::int16_t*>(base + 2 * sizeof(std::int32_t) * C);
  const Index in_row = static_cast<Index>(g.in_w) * C, out_row = static_cast<Index>(g.out_w) * C;
  const QVecAvx512::Params q = QVecAvx512::params(qo);
  const __m512i zr = _mm512_set1_epi32(zx);                            // one row's byte: zx
  const __m512i zcol = _mm512_set1_epi32(zx | (zx << 8) | (zx << 16));  // a column outside the image
  const __m512i lo8 = _mm512_set1_epi32(0xFF);
  for (int c0 = 0; c0 < C; c0 += kLanes) {
    const int left = C - c0;
    const __mmask16 m = static_cast<__mmask16>(left >= kLanes ? 0xFFFFu : (1u << left) - 1u);
    auto tap = [&](int t) MBF_LAMBDA_INLINE {
      return _mm512_cvtepi16_epi32(_mm256_maskz_loadu_epi16(m, w + static_cast<Index>(t) * C + c0));
    };
    __m512i wk[3];
    __m512i wsum = _mm512_setzero_si512();
    for (int kw = 0; kw < 3; ++kw) {
      const __m512i t0 = tap(kw), t1 = tap(3 + kw), t2 = tap(6 + kw);
      wsum = _mm512_add_epi32(wsum, _mm512_add_epi32(t0, _mm512_add_epi32(t1, t2)));
      wk[kw] = _mm512_ternarylogic_epi32(_mm512_and_si512(t0, lo8), _mm512_slli_epi32(_mm512_and_si512(t1, lo8), 8),
                                         _mm512_slli_epi32(_mm512_and_si512(t2, lo8), 16), 0xFE);
    }
    const __m512i b = _mm512_sub_epi32(_mm512_maskz_loadu_epi32(m, bias + c0), _mm512_mullo_epi32(wsum, zr));
    const __m512 sc = _mm512_maskz_loadu_ps(m, scale + c0);
    for (int oh = row_begin; oh < row_end; ++oh) {
      const int ih0 = oh * S - g.pad_top;
      const std::uint8_t* r[3];
      for (int k = 0; k < 3; ++k) {
        const int ih = ih0 + k;
        r[k] = ih >= 0 && ih < g.in_h ? in + ih * in_row + c0 : nullptr;
      }
      auto row = [&](int k, Index off) MBF_LAMBDA_INLINE {
        return r[k] ? _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, r[k] + off)) : zr;
      };
      auto column = [&](int iw) MBF_LAMBDA_INLINE {
        if (iw < 0 || iw >= g.in_w) return zcol;
        const Index off = static_cast<Index>(iw) * C;
        return _mm512_ternarylogic_epi32(row(0, off), _mm512_slli_epi32(row(1, off), 8),
                                         _mm512_slli_epi32(row(2, off), 16), 0xFE);
      };
      std::uint8_t* orow = out + oh * out_row + c0;
      int iw = -g.pad_left;
      __m512i x0 = column(iw), x1 = column(iw + 1), x2 = column(iw + 2);
      for (int ow = 0;;) {
        __m512i acc = _mm512_dpbusd_epi32(b, x0, wk[0]);
        acc = _mm512_dpbusd_epi32(acc, x1, wk[1]);
        acc = _mm512_dpbusd_epi32(acc, x2, wk[2]);
        _mm_mask_storeu_epi8(orow + static_cast<Index>(ow) * C, m, QVecAvx512::requant(acc, sc, q));
        if (++ow == g.out_w) break;
        iw += S;
        if (S == 1) {
          x0 = x1;
          x1 = x2;
        } else {
          x0 = x2;
          x1 = column(iw + 1);
        }
        x2 = column(iw + 2);
      }
    }
  }
}

}  // namespace

void qdwconv3x3_s1_avx512vnni_16c(const Conv2dGeom& g, const std::uint8_t* in, std::int32_t zx, const void* packed,
                                  std::uint8_t* out, int row_begin, int row_end, QuantOut q) {
  qdw_avx512vnni<1>(g, in, zx, packed, out, row_begin, row_end, q);
}

void qdwconv3x3_s2_avx512vnni_16c(const Conv2dGeom& g, const std::uint8_t* in, std::int32_t zx, const void* packed,
                                  std::uint8_t* out, int row_begin, int row_end, QuantOut q) {
  qdw_avx512vnni<2>(g, in, zx, packed, out, row_begin, row_end, q);
}

}  // namespace mbf
