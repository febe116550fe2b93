"""Giving the C heap's free memory back to the system once a config is applied.

Decoding and compiling a large snapshot (10k routes) allocates tens of MB that are freed right
after: the decoded JSON, the canonical encoding hashed, the previous runtime. glibc keeps freed
memory in its heaps (in the worker thread's arena too) rather than return it, so the process
would keep that peak as resident memory. `malloc_trim(0)` releases the free pages of every
arena; it takes well under 10 ms and nothing elsewhere than glibc needs it.
"""

from __future__ import annotations

import ctypes
import logging
import platform
import sys
from collections.abc import Callable

log = logging.getLogger("lockgate.dp.heap")


def _load() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux") or platform.libc_ver()[0] != "glibc":
        return None
    try:
        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    trim.argtypes = [ctypes.c_size_t]
    trim.restype = ctypes.c_int
    return trim


_TRIM = _load()


def release_free_memory() -> bool:
    """Return the C heap's free pages to the system; False where that is not available
    (not glibc). Blocking for a few ms: call it off the event loop."""
    if _TRIM is None:
        return False
    _TRIM(0)
    return True
