// SCAFFOLD, to be replaced by the avx512 depthwise, stem and pooling kernels: forwards to scalar.
#include "kernels/kernels_internal.h"

namespace mbf {

void dwconv3x3_s1_avx512(const Conv2dGeom& g, const float* in, const float* w, const float* b, float* out,
                       int r0, int r1, Clamp c) {
  dwconv3x3_scalar(g, in, w, b, out, r0, r1, c);
}
void dwconv3x3_s2_avx512(const Conv2dGeom& g, const float* in, const float* w, const float* b, float* out,
                       int r0, int r1, Clamp c) {
  dwconv3x3_scalar(g, in, w, b, out, r0, r1, c);
}
void conv3x3_stem_avx512(const Conv2dGeom& g, const float* in, const float* w, const float* b, float* out,
                       int r0, int r1, Clamp c) {
  conv3x3_stem_scalar(g, in, w, b, out, r0, r1, c);
}
void global_avg_pool_avx512(const float* in, int hw, int channels, float* out) {
  global_avg_pool_scalar(in, hw, channels, out);
}

}  // namespace mbf
