// qgemm_5x16c4_neon_dotprod: the shared int8 GEMM (kernels/int8/qgemm.h) with sdot (Armv8.2 dot
// product; this file alone is built with +dotprod, and runs only where HWCAP_ASIMDDP says so).
// The activations enter as x - 128; the table packs with the input zero point minus 128
// (KernelTable::qgemm_input_offset), which gives the 128 x column sum back through the bias.
#include "kernels/simd/qvec_neon.h"
#include "kernels/int8/qgemm.h"

static_assert(mbf::QVecNeonDot::kMr == mbf::kQgemmMrNeonDot &&
                  mbf::QVecNeonDot::kCols * mbf::QVecNeonDot::kChunks == mbf::kQgemmNrNeonDot,
              "tile");

MBF_DEFINE_QGEMM(QVecNeonDot, qgemm_neon_dotprod, qgemm_neon_dotprod_f32)
