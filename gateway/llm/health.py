"""Passive health of balancer targets: Kong's ai-proxy-advanced circuit breaker (3.13+), which
follows nginx's `max_fails` / `fail_timeout`.

A target that fails `max_fails` times within `fail_timeout` (a total in a sliding window, not
consecutive failures) is *open*: taken out of rotation for `fail_timeout`. After that it is
*half-open*: one live request is let through as a probe. A success closes it (failures
forgotten); a failure opens it again for another `fail_timeout`. A probe that never reports
back (the client went away) stops blocking other probes after `fail_timeout`.
`max_fails = 0` turns the breaker off: every target is always available.

Which outcomes count as failures is the caller's business (see `gateway.llm.failover`).
One instance serves one event loop; it is not thread-safe.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Literal

BreakerState = Literal["closed", "open", "half_open"]


class CircuitBreaker:
    """Health of targets 0..n-1, on a monotonic `clock` in seconds."""

    __slots__ = (
        "_clock",
        "_failures",
        "_max_fails",
        "_open_until",
        "_probe_until",
        "_window",
        "degraded",
    )

    def __init__(
        self, count: int, max_fails: int, fail_timeout_s: float, clock: Callable[[], float]
    ) -> None:
        self._max_fails = max_fails
        self._window = fail_timeout_s
        self._clock = clock
        self._failures: list[deque[float]] = [deque() for _ in range(count)]
        self._open_until = [0.0] * count
        """0: closed. Otherwise the time the open period ends (half-open after it)."""
        self._probe_until = [0.0] * count
        """While half-open: a probe is in flight until this time."""
        self.degraded = 0
        """How many targets are not closed: while 0, every target is available (fast path)."""

    @property
    def enabled(self) -> bool:
        return self._max_fails > 0

    def state(self, index: int) -> BreakerState:
        until = self._open_until[index]
        if until == 0.0:
            return "closed"
        return "open" if self._clock() < until else "half_open"

    def available(self, index: int) -> bool:
        """Whether `index` may take a request now (closed, or half-open with no probe out)."""
        until = self._open_until[index]
        if until == 0.0:
            return True
        now = self._clock()
        return now >= until and now >= self._probe_until[index]

    def acquire(self, index: int) -> None:
        """`index` was picked: if it is half-open, this request is its probe."""
        if self._open_until[index] != 0.0:
            self._probe_until[index] = self._clock() + self._window

    def record_failure(self, index: int) -> None:
        if self._max_fails <= 0:
            return
        now = self._clock()
        if self._open_until[index] != 0.0:
            if now >= self._open_until[index]:  # the half-open probe failed: open again
                self._trip(index, now)
            return  # a late failure of a request sent before the breaker opened
        failures = self._failures[index]
        failures.append(now)
        horizon = now - self._window
        while failures and failures[0] <= horizon:
            failures.popleft()
        if len(failures) >= self._max_fails:
            self._trip(index, now)

    def record_success(self, index: int) -> None:
        until = self._open_until[index]
        if until != 0.0 and self._clock() >= until:  # the half-open probe succeeded
            self.degraded -= 1
            self._open_until[index] = 0.0
            self._probe_until[index] = 0.0
            self._failures[index].clear()

    def _trip(self, index: int, now: float) -> None:
        if self._open_until[index] == 0.0:
            self.degraded += 1
        self._open_until[index] = now + self._window
        self._probe_until[index] = 0.0
        self._failures[index].clear()
