"""Hypothesis settings shared by the property tests: deterministic and bounded.

Every test names its own example count; the folder as a whole must stay well under 40 s on a
busy 2-core box. `derandomize` makes CI runs repeatable (the same examples every run), no
example database is written, and there is no per-example deadline (the box is shared).
"""

from __future__ import annotations

from hypothesis import HealthCheck, settings


def bounded(examples: int) -> settings:
    return settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )
