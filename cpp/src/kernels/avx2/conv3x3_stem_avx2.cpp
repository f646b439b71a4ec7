// The stem's 3x3 conv on AVX2 + FMA: the shared kernel (kernels/f32/conv3x3_stem.h), 16 output channels x 6 pixels per block.
#include "kernels/simd/vec_avx2.h"
#include "kernels/f32/conv3x3_stem.h"

MBF_DEFINE_CONV3X3_STEM(VecAvx2, conv3x3_stem_avx2)
