"""Target selection: weighted round-robin (Kong ai-proxy-advanced's default algorithm)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class WeightedRoundRobin(Generic[T]):
    """Smooth weighted round-robin, as in nginx's upstream module.

    Over every run of `sum(weights)` picks each item is chosen exactly `weight` times, and
    picks of one item are spread out rather than bunched (weights 2:1 give a, b, a; not a, a, b).
    Not thread-safe: one instance serves one event loop.
    """

    def __init__(self, items: Sequence[tuple[T, int]]) -> None:
        if not items:
            raise ValueError("at least one target is required")
        if any(weight < 1 for _, weight in items):
            raise ValueError("weights must be positive")
        self._items = [item for item, _ in items]
        self._weights = [weight for _, weight in items]
        self._current = [0] * len(items)
        self._total = sum(self._weights)

    def pick(self) -> T:
        """The next item."""
        if len(self._items) == 1:
            return self._items[0]
        best = 0
        for i, weight in enumerate(self._weights):
            self._current[i] += weight
            if self._current[i] > self._current[best]:
                best = i
        self._current[best] -= self._total
        return self._items[best]
