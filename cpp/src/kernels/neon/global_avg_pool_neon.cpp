// Global average pooling on NEON: the shared kernel (kernels/f32/global_avg_pool.h).
#include "kernels/simd/vec_neon.h"
#include "kernels/f32/global_avg_pool.h"

MBF_DEFINE_GLOBAL_AVG_POOL(VecNeon, global_avg_pool_neon)
