// qgemm_14x32c4_avx512vnni: the shared int8 GEMM (kernels/int8/qgemm.h) on AVX-512 VNNI (vpdpbusd).
#include "kernels/simd/qvec_avx512vnni.h"
#include "kernels/int8/qgemm.h"

static_assert(mbf::QVecAvx512Vnni::kMr == mbf::kQgemmMrAvx512Vnni && 32 == mbf::kQgemmNrAvx512Vnni, "tile");
MBF_DEFINE_QGEMM(QVecAvx512Vnni, qgemm_14x32c4_avx512vnni, qgemm_14x32c4_avx512vnni_f32)
