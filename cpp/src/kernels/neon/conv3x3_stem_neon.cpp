// The stem's 3x3 conv on NEON: the shared kernel (kernels/f32/conv3x3_stem.h), 16 output channels per block.
#include "kernels/simd/vec_neon.h"
#include "kernels/f32/conv3x3_stem.h"

MBF_DEFINE_CONV3X3_STEM(VecNeon, conv3x3_stem_neon)
