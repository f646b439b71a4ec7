// Global average pooling on AVX-512: the shared kernel (kernels/f32/global_avg_pool.h).
#include "kernels/simd/vec_avx512.h"
#include "kernels/f32/global_avg_pool.h"

MBF_DEFINE_GLOBAL_AVG_POOL(VecAvx512, global_avg_pool_avx512)
