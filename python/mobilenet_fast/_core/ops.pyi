"""Type stubs of ``mobilenet_fast._core.ops``: single NHWC float32 kernels (see ``mobilenet_fast.ops``)."""

from typing import Optional, Sequence, Tuple

import numpy as np
import numpy.typing as npt

_Clamp = Optional[Tuple[float, float]]
_Rows = Optional[Tuple[int, int]]
_F32 = npt.NDArray[np.float32]
_U8 = npt.NDArray[np.uint8]

def conv3x3(x: npt.ArrayLike, weights: npt.ArrayLike, bias: Optional[npt.ArrayLike] = None, stride: int = 1,
            pads: Sequence[int] = (1, 1, 1, 1), clamp: _Clamp = None, rows: _Rows = None,
            isa: Optional[str] = None, *, check_finite: bool = False) -> _F32: ...
def dwconv3x3(x: npt.ArrayLike, weights: npt.ArrayLike, bias: Optional[npt.ArrayLike] = None, stride: int = 1,
              pads: Sequence[int] = (1, 1, 1, 1), clamp: _Clamp = None, rows: _Rows = None,
              isa: Optional[str] = None, *, check_finite: bool = False) -> _F32: ...
def pwconv(x: npt.ArrayLike, weights: npt.ArrayLike, bias: Optional[npt.ArrayLike] = None, clamp: _Clamp = None,
           isa: Optional[str] = None, *, check_finite: bool = False) -> _F32: ...
def gemm(a: npt.ArrayLike, weights: npt.ArrayLike, bias: Optional[npt.ArrayLike] = None, clamp: _Clamp = None,
         isa: Optional[str] = None, *, check_finite: bool = False) -> _F32: ...
def dense(x: npt.ArrayLike, weights: npt.ArrayLike, bias: Optional[npt.ArrayLike] = None,
          isa: Optional[str] = None, *, check_finite: bool = False) -> _F32: ...
def global_avg_pool(x: npt.ArrayLike, isa: Optional[str] = None, *, check_finite: bool = False) -> _F32: ...
def softmax(x: npt.ArrayLike, isa: Optional[str] = None, *, check_finite: bool = False) -> _F32: ...
def qgemm_u8s8(a: npt.ArrayLike, weights: npt.ArrayLike, scale: npt.ArrayLike, bias: Optional[npt.ArrayLike] = None,
               input_zero_point: int = 0, output_zero_point: int = 0, clamp: Optional[Tuple[int, int]] = None,
               isa: Optional[str] = None, *, kernel: str = "auto") -> _U8: ...
def qdwconv3x3(x: npt.ArrayLike, weights: npt.ArrayLike, scale: npt.ArrayLike, bias: Optional[npt.ArrayLike] = None,
               stride: int = 1, pads: Sequence[int] = (1, 1, 1, 1), input_zero_point: int = 0,
               output_zero_point: int = 0, clamp: Optional[Tuple[int, int]] = None, rows: _Rows = None,
               isa: Optional[str] = None) -> _U8: ...
