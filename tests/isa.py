"""The ISA paths to test on this machine: every compiled path the CPU supports.

``MOBILENET_FAST_TEST_ISAS=scalar,avx2`` narrows the list (e.g. for a quick run).
"""

from __future__ import annotations

import os
from typing import List

from mobilenet_fast import _core


def isas_to_test() -> List[str]:
    supported = list(_core.supported_isas())
    only = os.environ.get("MOBILENET_FAST_TEST_ISAS")
    if only:
        wanted = [s.strip() for s in only.split(",") if s.strip()]
        return [s for s in supported if s in wanted]
    return supported
