"""SQLite's own heap in the control plane: a process-wide budget and the figure to watch.

Each SQLite connection keeps a page cache (up to 2 MiB by default) that fills as the database
grows, and the connection pool keeps several connections, so SQLite's share of the control
plane's memory would grow with the pool and the data (docs/security.md, the long soak).
`PRAGMA soft_heap_limit` bounds SQLite's memory for the whole process (it evicts cached pages
to stay under it), whatever the pool holds; `memory_used()` reads SQLite's own counter
(`sqlite3_memory_used`), exported as `lockgate_sqlite_memory_bytes`.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable

SOFT_HEAP_LIMIT_BYTES = 4 * 1024 * 1024
"""SQLite's memory budget in the control plane (all connections together). The control plane's
entity reads are small and mostly served from the OS's page cache beyond this."""


@functools.cache
def _memory_used_function() -> Callable[[], int] | None:
    """`sqlite3_memory_used` of the SQLite library Python's `sqlite3` module is linked with
    (the same library instance: dlopen returns the loaded one), or None where it cannot be
    found (a statically linked build without exported symbols)."""
    try:
        import _sqlite3

        library = ctypes.CDLL(_sqlite3.__file__)
        function = library.sqlite3_memory_used
    except (ImportError, OSError, AttributeError):
        return None
    function.restype = ctypes.c_int64
    function.argtypes = []
    return lambda: int(function())


def memory_used() -> int | None:
    """Bytes SQLite has allocated in this process now (page caches, schemas, statements), or
    None if this build does not export the counter."""
    function = _memory_used_function()
    return function() if function is not None else None
