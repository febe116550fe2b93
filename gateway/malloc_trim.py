"""Giving the C heap's free memory back to the system.

glibc keeps freed memory in its heaps (each thread's arena too) rather than return it, so a
process keeps its peaks, and memory freed in the middle of a thread's arena, as resident memory.
`malloc_trim(0)` releases the free pages of every arena; it takes well under 10 ms and nothing
other than glibc needs it.

- Data plane: once a config is applied (`release_free_memory`). Decoding and compiling a large
  snapshot (10k routes) allocates tens of MB that are freed right after: the decoded JSON, the
  canonical encoding hashed, the previous runtime.
- Control plane: every minute (`trim_every`). Its worker threads (database calls, snapshot
  builds) each leave a little free memory stranded in their arenas per call; in a 25-minute soak
  that was +7 % RSS, all of it given back by one trim (docs/security.md).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import platform
import sys
from collections.abc import Callable

log = logging.getLogger("lockgate.heap")


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


async def trim_every(interval_s: float) -> None:
    """`release_free_memory` off the event loop every `interval_s`, until cancelled; returns at
    once where trimming is not available."""
    if _TRIM is None:
        return
    while True:
        await asyncio.sleep(interval_s)
        await asyncio.to_thread(release_free_memory)
