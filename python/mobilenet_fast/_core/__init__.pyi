"""Type stubs of the C++ extension ``mobilenet_fast._core`` (kernels, dispatch, the whole-network Plan).

Written by hand from ``cpp/src/python/``; ``tests/test_typing.py`` checks them against the
built module with mypy's stubtest. Array arguments accept anything numpy can turn into a float32
C-contiguous array of the right shape (the bindings check and refuse the rest with InputError).
"""

from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import numpy.typing as npt

from . import ops as ops


_Pads = Sequence[int]
_Stem = Tuple[npt.ArrayLike, npt.ArrayLike, int, _Pads]
_Block = Tuple[npt.ArrayLike, npt.ArrayLike, int, _Pads, npt.ArrayLike, npt.ArrayLike]

class Plan:
    """The whole MobileNetV1 planned for one input size, run in C++."""

    def __init__(
        self,
        height: int,
        width: int,
        stem: _Stem,
        blocks: Sequence[_Block],
        classifier: Optional[Tuple[npt.ArrayLike, npt.ArrayLike]] = None,
        isa: Optional[str] = None,
        threads: int = 1,
        act_max: float = 6.0,
    ) -> None: ...
    def run(self, input: npt.ArrayLike, check_finite: bool = False) -> npt.NDArray[np.float32]: ...
    def features(self, input: npt.ArrayLike, check_finite: bool = False) -> npt.NDArray[np.float32]: ...
    @property
    def arena_bytes(self) -> int: ...
    @property
    def feature_channels(self) -> int: ...
    @property
    def input_shape(self) -> Tuple[int, int, int]: ...
    @property
    def isa(self) -> str: ...
    @property
    def num_classes(self) -> int: ...
    @property
    def threads(self) -> int: ...

# (weights, bias, multiplier, zero point, clamp min, clamp max[, weight offset])
_QLayer = Union[Tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike, int, int, int],
                Tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike, int, int, int, int]]

class QPlan:
    """The int8 MobileNetV1 planned for one input size, run in C++."""

    def __init__(
        self,
        height: int,
        width: int,
        input: Union[Tuple[float, int], Tuple[float, int, bool]],
        stem: Tuple[int, _Pads, _QLayer],
        blocks: Sequence[Tuple[int, _Pads, _QLayer, _QLayer]],
        pool: Union[Tuple[float, int, float, int], Tuple[float, int, float, int, bool]],
        classifier: Optional[Union[Tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike],
                                   Tuple[npt.ArrayLike, npt.ArrayLike, npt.ArrayLike, int]]] = None,
        isa: Optional[str] = None,
        threads: Optional[int] = None,
    ) -> None: ...
    def run(self, x: npt.ArrayLike, check_finite: bool = True) -> npt.NDArray[np.float32]: ...
    def features(self, x: npt.ArrayLike, check_finite: bool = True) -> npt.NDArray[np.float32]: ...
    @property
    def feature_channels(self) -> int: ...
    @property
    def isa(self) -> str: ...
    @property
    def num_classes(self) -> int: ...
    @property
    def pair_limited_layers(self) -> int: ...
    @property
    def gemm_layers(self) -> int: ...
    @property
    def threads(self) -> int: ...

def compiled_isas() -> List[str]: ...
def supported_isas() -> List[str]: ...
def select_isa(isa: Optional[str] = None) -> str: ...
def cpu_info() -> Dict[str, Any]: ...
def fork_generation() -> int: ...
