"""Returning freed memory to the system, which glibc's allocator does only now and then.

After a burst of uploads (1 MiB chunks through the I/O threads, each with an arena of
its own) or of decodes, freed pages stay in the process until `malloc_trim` hands them
back. Elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import time
from typing import Any

_trim: Any
try:
    _trim = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").malloc_trim
except (OSError, AttributeError):
    _trim = None


def give_back() -> bool:
    """Trim every arena's free memory; False where there is no malloc_trim."""
    if _trim is None:
        return False
    _trim(0)
    return True


class Trimmer:
    """give_back() at the end of a burst, at most once every `interval` seconds."""

    def __init__(self, interval: float = 2.0) -> None:
        self._interval = interval
        self._last = 0.0

    def due(self) -> bool:
        now = time.monotonic()
        if now - self._last < self._interval:
            return False
        self._last = now
        return True
