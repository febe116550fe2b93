"""Throttling of failed logins, per username and per client address (in memory, per process).

After `max_failures` failures within `window_s` for one username (or `max_per_client` from one
address), further attempts are refused until the oldest failure leaves the window; a success
clears the username's count. Refused attempts do not check the password at all, so guessing
stays at a few tries per window whatever the rate of requests.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

Clock = Callable[[], float]
MAX_KEYS = 10_000
"""Tracked usernames/addresses at most; the stalest are dropped beyond it (bounded memory)."""


class LoginThrottle:
    def __init__(
        self,
        clock: Clock = time.monotonic,
        *,
        max_failures: int = 5,
        max_per_client: int = 20,
        window_s: float = 300.0,
    ) -> None:
        self._clock = clock
        self._limits = {"user": max_failures, "client": max_per_client}
        self._window = window_s
        self._failures: dict[tuple[str, str], deque[float]] = {}

    def _recent(self, key: tuple[str, str], now: float) -> deque[float]:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and now - times[0] >= self._window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def retry_after(self, username: str, client: str) -> float | None:
        """Seconds until a login for `username` from `client` may be tried, or None: now."""
        now = self._clock()
        waits = []
        for key in (("user", username), ("client", client)):
            times = self._recent(key, now)
            if len(times) >= self._limits[key[0]]:
                waits.append(self._window - (now - times[0]))
        return max(waits) if waits else None

    def failed(self, username: str, client: str) -> None:
        now = self._clock()
        for key in (("user", username), ("client", client)):
            self._recent(key, now)
            self._failures.setdefault(key, deque()).append(now)
        if len(self._failures) > MAX_KEYS:
            stalest = sorted(self._failures, key=lambda k: self._failures[k][-1])
            for key in stalest[: len(self._failures) - MAX_KEYS]:
                del self._failures[key]

    def succeeded(self, username: str) -> None:
        self._failures.pop(("user", username), None)
