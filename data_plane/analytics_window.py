"""Per-minute request aggregates kept in memory by a data plane (see docs/analytics.md).

`MinuteWindow.add` runs once per proxied request, so it does one dict lookup and a few integer
additions; everything else (collapsing to status classes, building batches, deciding what is
unsent) happens at flush time.

Minutes are wall-clock minutes (UTC epoch seconds at their start) of the moment a request
*finished*: a minute that has ended never changes again, however long a stream ran.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

LATENCY_BOUNDS_MS: tuple[float, ...] = (
    1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750,
    1000, 1500, 2000, 3000, 5000, 7500, 10000, 30000, 60000,
)  # fmt: skip
"""Upper bounds (inclusive) of the latency histogram's buckets, in milliseconds; one more bucket
counts everything slower. Fixed, so histograms of any nodes and minutes add up. The control
plane keeps the same list (control_plane.analytics) and re-buckets batches that differ."""

MINUTE = 60


GroupKey = tuple[str, str, str, str, str, str, int, str, str, str]
"""What a request is counted under: (route_id, route, service_id, service, consumer_id,
consumer, status, provider, model, source). Names are the entity's name, else its id; "" =
none. `source` is who answered (Kong's Prometheus label: service, kong, error). A plain tuple:
it is built once per request, and a NamedTuple costs ~10 times more to build."""

STATUS: Final = 6
"""Index of the status code in a GroupKey."""
SOURCE: Final = 9
"""Index of the source in a GroupKey."""

Retire = Callable[[dict[GroupKey, "Counts"]], None]


@dataclass(slots=True)
class Counts:
    """Totals of one group: requests, latency histogram, LLM tokens and cost."""

    requests: int = 0
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BOUNDS_MS) + 1))
    latency_sum_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_nanos: int = 0

    def merge(self, other: Counts) -> None:
        self.requests += other.requests
        for i, n in enumerate(other.buckets):
            self.buckets[i] += n
        self.latency_sum_ms += other.latency_sum_ms
        self.prompt_tokens += other.prompt_tokens
        self.completion_tokens += other.completion_tokens
        self.cost_nanos += other.cost_nanos

    def copy(self) -> Counts:
        out = Counts()
        out.merge(self)
        return out


def status_class(status: int) -> str:
    """`200` -> `"2xx"`."""
    return f"{status // 100}xx"


def cost_nanos(cost: float) -> int:
    """An LLM cost as an integer number of 1e-9 units: integers add up exactly on every node,
    in any order, and in SQL."""
    return round(cost * 1e9)


class MinuteWindow:
    """The minutes a data plane has counted and not yet had acknowledged by the control plane.

    Owned by one event loop (the proxy's): not thread-safe, and needs no lock.
    """

    def __init__(self, *, clock: Callable[[], float] = time.time, max_minutes: int = 1440) -> None:
        """`max_minutes` bounds memory while no control plane answers: beyond it the oldest
        unacknowledged minute is dropped (and reported by `pop_dropped`). `on_retire` (set by
        whoever keeps totals since start, e.g. data_plane.metrics) gets every minute the window
        lets go of, acknowledged or dropped."""
        if max_minutes < 2:
            raise ValueError("max_minutes must be at least 2")
        self._clock = clock
        self._max_minutes = max_minutes
        self._minutes: dict[int, dict[GroupKey, Counts]] = {}
        self._acked: dict[int, int] = {}  # minute -> its request total the CP acknowledged
        self._current = -1
        self._latest = -1
        self._groups: dict[GroupKey, Counts] = {}
        self.dropped_requests = 0
        """Requests dropped unsent since start (buffer full)."""
        self._dropped_log: list[tuple[int, int]] = []
        self.on_retire: Retire | None = None

    def add(
        self,
        key: GroupKey,
        latency_ms: float,
        prompt: int = 0,
        completion: int = 0,
        cost_nanos: int = 0,
    ) -> None:
        """Count one finished request now. The hot path: keep it to dict and slot updates."""
        minute = int(self._clock()) // MINUTE * MINUTE
        if minute != self._current:
            self._switch(minute)
        counts = self._groups.get(key)
        if counts is None:
            counts = self._groups[key] = Counts()
        counts.requests += 1
        counts.buckets[bisect.bisect_left(LATENCY_BOUNDS_MS, latency_ms)] += 1
        counts.latency_sum_ms += latency_ms
        if prompt or completion or cost_nanos:
            counts.prompt_tokens += prompt
            counts.completion_tokens += completion
            counts.cost_nanos += cost_nanos

    def _switch(self, minute: int) -> None:
        # A clock stepped back keeps counting into the newest minute: a minute already
        # acknowledged and forgotten must never be sent again with only part of its requests.
        minute = max(minute, self._latest)
        self._latest = self._current = minute
        groups = self._minutes.get(minute)
        if groups is None:
            groups = self._minutes[minute] = {}
            self._bound()
        self._groups = groups

    def _bound(self) -> None:
        while len(self._minutes) > self._max_minutes:
            oldest = min(self._minutes)
            groups = self._minutes.pop(oldest)
            lost = sum(c.requests for c in groups.values()) - self._acked.pop(oldest, 0)
            self.dropped_requests += lost
            self._dropped_log.append((oldest, lost))
            if self.on_retire is not None:
                self.on_retire(groups)

    def pop_dropped(self) -> list[tuple[int, int]]:
        """(minute, requests) dropped unsent since the last call, for the sender to log."""
        out, self._dropped_log = self._dropped_log, []
        return out

    def pending(self) -> list[tuple[int, dict[GroupKey, Counts]]]:
        """Copies of every minute with requests the control plane has not acknowledged, oldest
        first: the whole minute each time (a batch replaces what an earlier one said). Ended
        minutes acknowledged in full are forgotten here."""
        ended = self._minute_now()
        out = []
        for minute in sorted(self._minutes):
            groups = self._minutes[minute]
            total = sum(c.requests for c in groups.values())
            if total != self._acked.get(minute, 0):
                out.append((minute, {k: c.copy() for k, c in groups.items()}))
            elif minute < ended:
                self._forget(minute)
        return out

    def acknowledged(self, sent: list[tuple[int, dict[GroupKey, Counts]]]) -> None:
        """The control plane stored `sent` (as returned by `pending`). Ended minutes that have
        not changed since are forgotten."""
        ended = self._minute_now()
        for minute, groups in sent:
            current = self._minutes.get(minute)
            if current is None:
                continue
            total = sum(c.requests for c in groups.values())
            if minute < ended and sum(c.requests for c in current.values()) == total:
                self._forget(minute)
            else:
                self._acked[minute] = total

    def _minute_now(self) -> int:
        return int(self._clock()) // MINUTE * MINUTE

    def _forget(self, minute: int) -> None:
        groups = self._minutes.pop(minute)
        self._acked.pop(minute, None)
        if self.on_retire is not None:
            self.on_retire(groups)
        if minute == self._current:
            self._current = -1  # the next request opens a fresh dict

    def live(self) -> list[dict[GroupKey, Counts]]:
        """The groups of every minute held (not copies: read them on the owning loop)."""
        return list(self._minutes.values())

    @property
    def minutes(self) -> int:
        """How many minutes are held (unacknowledged, or the current one)."""
        return len(self._minutes)

    def unsent_requests(self) -> int:
        return sum(
            sum(c.requests for c in groups.values()) - self._acked.get(minute, 0)
            for minute, groups in self._minutes.items()
        )
