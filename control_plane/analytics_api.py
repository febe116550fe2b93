"""`GET /analytics/requests` on the Admin API (behind its token check; every role may read).

Query parameters (all optional; unknown ones are a 400):

- `start`, `end`: epoch seconds or ISO 8601 (`2025-01-31T12:00:00Z`); `end` defaults to now,
  `start` to one hour (interval minute), a day (hour) or 30 days (day) before `end`. Both are
  aligned outwards to whole intervals (UTC) and returned as used.
- `interval`: `minute` (default), `hour` or `day`.
- `group_by`: comma-separated subset of `route,service,consumer,status_class,provider,model`.
- filters `route`, `service`, `consumer` (name or id), `provider`, `model`, `status_class`
  (`2xx`...): only matching requests.

Answer: `{"data": [{"bucket", "group", "requests", "latency_ms": {"p50", "p95", "p99"},
"prompt_tokens", "completion_tokens", "total_tokens", "cost"}], "start", "end", "interval"}`,
ordered by bucket then group; buckets without requests are left out. See docs/analytics.md.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol

from fastapi import FastAPI, Request

from control_plane.admin.errors import bad_request
from control_plane.analytics import percentile
from control_plane.store.analytics_tables import GROUP_COLUMNS
from control_plane.store.sql_analytics import Aggregate, AnalyticsQuery, SqlAnalytics

INTERVALS = {"minute": 60, "hour": 3600, "day": 86400}
DEFAULT_SPAN = {"minute": 3600, "hour": 86400, "day": 30 * 86400}
MAX_BUCKETS = 10_000
"""More buckets than this in one answer is a 400 (ask for a coarser interval)."""

_FILTERS = GROUP_COLUMNS
_PARAMS = frozenset({"start", "end", "interval", "group_by", *_FILTERS})
_STATUS_CLASS = re.compile(r"^[1-5]xx$")


def parse_query(params: dict[str, str], now: float) -> tuple[AnalyticsQuery, str]:
    """The store query for the request's parameters, and the interval's name. Raises the
    Admin API's 400 (AdminError) with a message naming the bad parameter."""
    unknown = sorted(set(params) - _PARAMS)
    if unknown:
        raise bad_request(
            f"unknown query parameter {unknown[0]!r}; expected one of {', '.join(sorted(_PARAMS))}"
        )
    name = params.get("interval") or "minute"
    if name not in INTERVALS:
        raise bad_request(f"interval: expected minute, hour or day, got {name!r}")
    step = INTERVALS[name]
    end = _time(params, "end", now)
    start = _time(params, "start", end - DEFAULT_SPAN[name])
    if start >= end:
        raise bad_request("start must be before end")
    start = start // step * step
    end = -(-end // step) * step
    if (end - start) // step > MAX_BUCKETS:
        raise bad_request(
            f"{(end - start) // step} {name} buckets requested (at most {MAX_BUCKETS}): "
            "narrow start/end or use a coarser interval"
        )
    group_by: list[str] = []
    for item in (params.get("group_by") or "").split(","):
        item = item.strip()
        if not item:
            continue
        if item not in GROUP_COLUMNS:
            raise bad_request(
                f"group_by: unknown dimension {item!r}; expected any of {','.join(GROUP_COLUMNS)}"
            )
        if item not in group_by:
            group_by.append(item)
    filters = {k: params[k] for k in _FILTERS if params.get(k)}
    if "status_class" in filters and not _STATUS_CLASS.match(filters["status_class"]):
        raise bad_request(
            f"status_class: expected 1xx, 2xx, 3xx, 4xx or 5xx, got {filters['status_class']!r}"
        )
    return AnalyticsQuery(start, end, step, tuple(group_by), filters), name


def _time(params: dict[str, str], name: str, default: float) -> int:
    raw = params.get(name)
    if not raw:
        return int(default)
    try:
        if re.fullmatch(r"\d{1,12}", raw):
            return int(raw)
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise bad_request(
            f"{name}: expected epoch seconds or an ISO 8601 time with a zone, got {raw!r}"
        )
    return int(parsed.timestamp())


def row_json(row: Aggregate) -> dict[str, Any]:
    """One answer row (the shape the UI charts read)."""

    def p(q: float) -> float | None:
        value = percentile(row.buckets, q)
        return None if value is None else round(value, 3)

    return {
        "bucket": row.bucket,
        "group": {k: (v or None) for k, v in row.group.items()},
        "requests": row.requests,
        "latency_ms": {"p50": p(0.5), "p95": p(0.95), "p99": p(0.99)},
        "prompt_tokens": row.prompt_tokens,
        "completion_tokens": row.completion_tokens,
        "total_tokens": row.prompt_tokens + row.completion_tokens,
        "cost": row.cost_nanos / 1e9,
    }


def answer(store: SqlAnalytics, params: dict[str, str], now: float) -> dict[str, Any]:
    """The body of `GET /analytics/requests?<params>` (blocking: it queries the database).
    Raises AdminError (400) for bad parameters."""
    query, name = parse_query(params, now)
    rows = store.query(query)
    return {
        "data": [row_json(r) for r in rows],
        "start": query.start,
        "end": query.end,
        "interval": name,
    }


def add_analytics_routes(
    app: FastAPI, store: SqlAnalytics, *, clock: Callable[[], float] = time.time
) -> None:
    """Mount `GET /analytics/requests` on the Admin API app."""

    @app.get("/analytics/requests")
    def requests(request: Request) -> dict[str, Any]:  # sync: FastAPI runs it in a thread
        return answer(store, dict(request.query_params), clock())


class UiQuery(Protocol):
    """What the UI asks (control_plane.ui.extensions.AnalyticsQuery has these fields)."""

    @property
    def start(self) -> float: ...
    @property
    def end(self) -> float: ...
    @property
    def interval(self) -> str: ...
    @property
    def group_by(self) -> Sequence[str]: ...


class AnalyticsSource:
    """The UI's analytics seam (control_plane.ui.extensions.AnalyticsSource) over the same
    answer as the Admin API route."""

    def __init__(self, store: SqlAnalytics, *, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self._clock = clock

    async def __call__(self, query: UiQuery) -> Mapping[str, Any]:
        params = {
            "start": str(int(query.start)),
            "end": str(int(query.end)),
            "interval": query.interval,
            "group_by": ",".join(query.group_by),
        }
        return await asyncio.to_thread(answer, self._store, params, self._clock())
