"""The data plane's garbage-collector settings (process-wide, set once by `main`).

Serving allocates many short-lived objects per request while the long-lived heap (imports,
the compiled runtime) is large: every young-generation collection that escalated walked all of
it. Freezing what exists after start-up and collecting the young generation less often removed
most of the ~7% of CPU py-spy showed in the collector (docs/benchmarks.md).
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 20_000
"""Allocations between young-generation collections (CPython's default: 700)."""


def tune_for_serving() -> None:
    """Collect once, move everything alive now out of the collector's view, and collect the
    young generation less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_THRESHOLD, 20, 20)
