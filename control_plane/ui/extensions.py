"""Seams to services the UI shows but does not own: request analytics and the supervisor of
local data-plane processes. The entry point passes adapters over the same service functions
the Admin API's `/analytics/requests` and `/clustering/local-nodes` use (None: not available,
and the UI says so or hides the control)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

Interval = Literal["minute", "hour", "day"]


@dataclass(frozen=True, slots=True)
class AnalyticsQuery:
    """`GET /analytics/requests?start=&end=&interval=&group_by=` as a value."""

    start: float
    """Epoch seconds, inclusive."""
    end: float
    """Epoch seconds, exclusive."""
    interval: Interval
    group_by: Sequence[str] = ()


class AnalyticsSource(Protocol):
    """Answers an analytics query with the body of `GET /analytics/requests`:
    `{"data": [{"bucket", "group": {...}, "requests", "latency_ms": {"p50", "p95", "p99"},
    "prompt_tokens", "completion_tokens", "total_tokens", "cost"}], "start", "end",
    "interval"}`."""

    async def __call__(self, query: AnalyticsQuery) -> Mapping[str, Any]: ...


class LocalNodes(Protocol):
    """The local data-plane supervisor, as `/clustering/local-nodes` exposes it: bodies
    `{"desired": N, "data": [{"index", "node_id", "pid", "state", "restarts", "status_port",
    "started_at"}]}`."""

    async def status(self) -> Mapping[str, Any] | None:
        """The body of `GET /clustering/local-nodes`; None when nothing is supervised (the
        Admin API's 404), which hides the scale control."""
        ...

    async def scale(self, desired: int) -> Mapping[str, Any]:
        """`PUT /clustering/local-nodes {"desired": N}`; raises ValueError with a message
        for a count the supervisor refuses."""
        ...
