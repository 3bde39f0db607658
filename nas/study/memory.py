"""Keeping freed memory in the process, so scoring candidates does not wait on the kernel.

Scoring a candidate allocates tens of MB per layer output (a batch of 250 calibration images at 32 x
32 x 48 channels is 49 MB). glibc's malloc serves blocks above its mmap threshold (at most 32 MB)
with fresh ``mmap`` pages and returns freed heap tops to the kernel, so every such tensor is
page-faulted and zeroed again on first touch, which slows batch-norm re-estimation most (measured
in ``benchmarks/freed_memory.py``). :func:`keep_freed_memory` asks malloc to serve
every block from its heap and never trim it: the process keeps its peak memory, and later tensors
reuse it. ``EENAS_KEEP_FREED_MEMORY=0`` in the environment turns this off.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters (glibc's malloc.h)
M_MMAP_MAX = -4
_KEPT: list[bool] = []  # the outcome, once asked


def keep_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse (no mmap'ed blocks, no trimming); True when
    it took effect. Other platforms and C libraries, and ``EENAS_KEEP_FREED_MEMORY=0``, leave malloc
    alone (False). Idempotent; it lasts for the life of the process."""
    if not _KEPT:
        wanted = os.environ.get("EENAS_KEEP_FREED_MEMORY", "1") != "0"
        _KEPT.append(_mallopt() if wanted and sys.platform.startswith("linux") else False)
    return _KEPT[0]


def _mallopt() -> bool:
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    return bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, 2**31 - 1))
