// Global average pooling on AVX2: the shared kernel (kernels/f32/global_avg_pool.h).
#include "kernels/simd/vec_avx2.h"
#include "kernels/f32/global_avg_pool.h"

MBF_DEFINE_GLOBAL_AVG_POOL(VecAvx2, global_avg_pool_avx2)
