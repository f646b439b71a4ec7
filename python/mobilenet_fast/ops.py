"""Single C++ kernels on NHWC float32 numpy arrays (the building blocks of the Plan).

Each takes an optional ``isa`` ("scalar", "avx2", ...; default: ``MOBILENET_FAST_ISA`` or the
best available) and checks its arguments, raising :class:`mobilenet_fast.errors.InputError`.
``pads`` are (top, left, bottom, right); ``clamp`` is (min, max) or None for a linear output;
``rows`` = (begin, end) computes only those output rows (the rest of the output stays zero).
NaN inputs are not checked here: they propagate or are clamped depending on the kernel.
"""

from ._core import ops as _ops

conv3x3 = _ops.conv3x3
dwconv3x3 = _ops.dwconv3x3
pwconv = _ops.pwconv
gemm = _ops.gemm
dense = _ops.dense
global_avg_pool = _ops.global_avg_pool
softmax = _ops.softmax

__all__ = ["conv3x3", "dwconv3x3", "pwconv", "gemm", "dense", "global_avg_pool", "softmax"]
