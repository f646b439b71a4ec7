// The steady state of the NEON kernels, for bench/arm_model.py (llvm-mca); not part of any build.
// Each function runs one kernel's block over interior pixels with full vectors (no masks, no
// padding): the code path the kernels take on the bulk of every MobileNetV1 layer, instantiated
// from the same templates (kernels/f32, kernels/int8) the kernels are, so its loop over channel
// blocks (or over k for the GEMMs, taken from the kernels' own tile functions) is what the model
// analyses. Cross-compiled to assembly by the script with the kernels' flags.
#include <cstdint>

#include "kernels/simd/vec_neon.h"
#include "kernels/simd/qvec_neon.h"
#include "kernels/f32/conv3x3_stem.h"
#include "kernels/f32/dwconv3x3.h"
#include "kernels/int8/qdwconv3x3.h"

namespace mbf {

namespace {

// The kernels' own channel-block loops over one row of interior blocks.
template <int S>
MBF_INLINE void dw_f32(const float* const rows[3], Index C, const float* w, const float* bias, float* o, int blocks) {
  const VecNeon::Vec lo = VecNeon::set1(0.0f), hi = VecNeon::set1(6.0f);
  for (int c0 = 0; c0 < 4 * blocks; c0 += 4) {
    const float* r[3] = {rows[0] + c0, rows[1] + c0, rows[2] + c0};
    dw_block<VecNeon, S, VecNeon::kDwPixels, false>(r, true, true, false, false, 0, C, w + c0, bias + c0, lo, hi,
                                                    VecNeon::mask_all(), o + c0);
  }
}

template <int S>
MBF_INLINE void qdw(const std::uint8_t* const rows[3], Index C, const std::int16_t* w, const std::int32_t* bias,
                    const float* scale, std::uint8_t* o, int blocks) {
  const QVecNeon::Params q = QVecNeon::params(QuantOut{0, 0, 255});
  const QVecNeon::DwX zx = QVecNeon::dw_set_zx(3);
  for (int c0 = 0; c0 < 8 * blocks; c0 += 8) {
    const std::uint8_t* r[3] = {rows[0] + c0, rows[1] + c0, rows[2] + c0};
    qdw_block<QVecNeon, S, QVecNeon::kDwPixels>(r, true, true, false, false, 0, C, w + c0, bias + c0, scale + c0, zx,
                                                q, QVecNeon::kDwLanes, o + c0);
  }
}

}  // namespace

extern "C" {

// fp32 depthwise, stride 1 and 2: kDwPixels output pixels x 4 channels per block.
void mca_dw_f32_s1(const float* const rows[3], Index C, const float* w, const float* bias, float* o, int blocks) {
  dw_f32<1>(rows, C, w, bias, o, blocks);
}
void mca_dw_f32_s2(const float* const rows[3], Index C, const float* w, const float* bias, float* o, int blocks) {
  dw_f32<2>(rows, C, w, bias, o, blocks);
}

// fp32 stem: kStemPixels pixels x kStemVectors vectors of output channels, the 27 taps.
void mca_stem_f32(const Conv2dGeom& g, const float* const rows[3], const float* w, const float* bias, float* o,
                  int blocks) {
  const VecNeon::Vec lo = VecNeon::set1(0.0f), hi = VecNeon::set1(6.0f);
  for (int b = 0; b < blocks; ++b)
    stem_block<VecNeon, VecNeon::kStemPixels, VecNeon::kStemVectors, false>(
        g, rows, 0, 3, b * 6, 6, 0, 9, w, bias, lo, hi, VecNeon::mask_all(), o + b * 64);
}

// int8 depthwise, stride 1 and 2: kDwPixels output pixels x 8 channels per block.
void mca_qdw_s1(const std::uint8_t* const rows[3], Index C, const std::int16_t* w, const std::int32_t* bias,
                const float* scale, std::uint8_t* o, int blocks) {
  qdw<1>(rows, C, w, bias, scale, o, blocks);
}
void mca_qdw_s2(const std::uint8_t* const rows[3], Index C, const std::int16_t* w, const std::int32_t* bias,
                const float* scale, std::uint8_t* o, int blocks) {
  qdw<2>(rows, C, w, bias, scale, o, blocks);
}

}  // extern "C"
}  // namespace mbf
