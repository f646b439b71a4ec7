// The stem's 3x3 conv on AVX-512: the shared kernel (kernels/f32/conv3x3_stem.h), 32 output
// channels x 8 pixels per block.
#include "kernels/simd/vec_avx512.h"
#include "kernels/f32/conv3x3_stem.h"

namespace mbf {

void conv3x3_stem_avx512(const Conv2dGeom& g, const float* in, const float* w, const float* bias, float* out,
                         int row_begin, int row_end, Clamp c) {
  // Up to 8 output channels (alpha 0.25) would leave half of every zmm FMA idle; the AVX2 kernel
  // (8-lane vectors, a plain function of another translation unit) measured about 25% faster.
  if (g.out_channels <= 8) {
    conv3x3_stem_avx2(g, in, w, bias, out, row_begin, row_end, c);
    return;
  }
  conv3x3_stem<VecAvx512>(g, in, w, bias, out, row_begin, row_end, c);
}

}  // namespace mbf
