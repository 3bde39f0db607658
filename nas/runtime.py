"""Process settings that make CPU training and evaluation faster."""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_TUNED = [False]


def tune_cpu_allocator(mmap_threshold: int = 1 << 30, trim_threshold: int = 1 << 31) -> bool:
    """Keep freed activation buffers in glibc's heap instead of returning them to the OS.

    By default glibc serves large buffers with mmap (a threshold that starts at 128 KiB) and trims
    freed memory at the top of its heap, so each step page-faults its activations in again;
    raising both thresholds makes the allocator reuse them (measured in
    ``benchmarks/training_throughput.py``). Linux/glibc only; returns whether the settings were
    applied. Idempotent.
    """
    if _TUNED[0]:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, mmap_threshold)) and bool(libc.mallopt(_M_TRIM_THRESHOLD,
                                                                                          trim_threshold))
    except (OSError, AttributeError):
        return False
    _TUNED[0] = ok
    return ok
