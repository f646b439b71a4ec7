"""Single C++ kernels on NHWC float32 numpy arrays (the building blocks of the Plan).

Each takes an optional ``isa`` ("scalar", "avx2", ...; default: ``MOBILENET_FAST_ISA`` or the
best available) and checks every argument before a kernel runs, raising
:class:`mobilenet_fast.errors.InputError`:

* arrays must be numpy arrays (not masked), float32 in native byte order, of the right rank and
  shape, C-contiguous and aligned, with fewer than 2^31 values; outputs that would reach 2^31
  values are refused before they are allocated (a failed allocation raises ``MemoryError``).
  Inputs are only read (read-only arrays are fine); every result is a new array.
* ``stride`` is 1 or 2; ``pads`` are four ints (top, left, bottom, right), each 0 or 1;
  ``clamp`` is (min, max) with min <= max and no NaN, or None for a linear output;
  ``rows`` = (begin, end) with 0 <= begin <= end <= output height computes only those output rows
  (the rest of the output stays zero). Ints must be ints (not bools, not floats).

NaN/Inf: by default the ops do **not** check their input. Non-finite values give unspecified
results that differ between ISAs (the scalar kernels propagate NaN; the SIMD clamps turn it into
the clamp's lower bound, -inf for a linear output). Pass ``check_finite=True`` to have ``x``
checked first (InputError "contains NaN or Inf"). :class:`mobilenet_fast.Model` always checks.

int8: ``qgemm_u8s8(a, weights, scale, bias=None, input_zero_point=0, output_zero_point=0,
clamp=None, isa=None)`` multiplies uint8 activations ``a[M,K]`` by int8 weights ``[K,N]``, sums
exactly in int32 (``acc = bias + sum((a - input_zero_point) * w)``) and requantises each column
``n`` to uint8: ``clamp(output_zero_point + rne(float32(acc) * scale[n]), min, max)`` (float32
multiply, round to nearest even; ``clamp`` = (min, max) in 0..255, default (0, 255)). The bytes
are the same on every ISA. ``qdwconv3x3(x, weights, scale, bias=None, stride=1, pads=(1, 1, 1, 1),
input_zero_point=0, output_zero_point=0, clamp=None, rows=None, isa=None)`` is the int8 depthwise
3x3 on uint8 NHWC with int8 ``[3, 3, C]`` weights, requantised the same way per channel (a tap in
the padding counts as the input zero point, i.e. adds nothing).
"""

from ._core import ops as _ops

conv3x3 = _ops.conv3x3
dwconv3x3 = _ops.dwconv3x3
pwconv = _ops.pwconv
gemm = _ops.gemm
dense = _ops.dense
global_avg_pool = _ops.global_avg_pool
softmax = _ops.softmax
qgemm_u8s8 = _ops.qgemm_u8s8
qdwconv3x3 = _ops.qdwconv3x3

__all__ = ["conv3x3", "dwconv3x3", "pwconv", "gemm", "dense", "global_avg_pool", "softmax", "qgemm_u8s8",
           "qdwconv3x3"]
