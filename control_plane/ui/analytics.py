"""Turning analytics rows (`GET /analytics/requests` bodies) into chart series and totals."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from control_plane.ui.extensions import AnalyticsQuery, Interval

STATUS_GROUP = "status_class"
"""The group-by dimension of response status (2xx, 4xx, ...)."""
DIMENSIONS = ("consumer", "model", "provider")


@dataclass(frozen=True, slots=True)
class TimeRange:
    key: str
    label: str
    seconds: int
    interval: Interval


RANGES = (
    TimeRange("15m", "Last 15 minutes", 900, "minute"),
    TimeRange("1h", "Last hour", 3600, "minute"),
    TimeRange("6h", "Last 6 hours", 6 * 3600, "minute"),
    TimeRange("24h", "Last 24 hours", 24 * 3600, "hour"),
    TimeRange("7d", "Last 7 days", 7 * 24 * 3600, "hour"),
    TimeRange("30d", "Last 30 days", 30 * 24 * 3600, "day"),
)
DEFAULT_RANGE = RANGES[1]


def time_range(key: str | None) -> TimeRange:
    return next((r for r in RANGES if r.key == key), DEFAULT_RANGE)


def query(
    span: TimeRange, group_by: Sequence[str] = (), now: float | None = None
) -> AnalyticsQuery:
    end = time.time() if now is None else now
    return AnalyticsQuery(end - span.seconds, end, span.interval, tuple(group_by))


def bucket_label(bucket: Any, interval: str) -> str:
    """A bucket (epoch seconds or an ISO 8601 string) as a short UTC label."""
    if isinstance(bucket, int | float) and not isinstance(bucket, bool):
        moment = datetime.fromtimestamp(bucket, UTC)
    else:
        try:
            moment = datetime.fromisoformat(str(bucket).replace("Z", "+00:00"))
        except ValueError:
            return str(bucket)
    return moment.strftime("%Y-%m-%d" if interval == "day" else "%m-%d %H:%M")


def group_label(group: Any) -> str:
    if not isinstance(group, Mapping) or not group:
        return "all"
    return ", ".join("-" if v is None else str(v) for v in group.values())


def _rows(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    data = body.get("data")
    return [row for row in data if isinstance(row, Mapping)] if isinstance(data, list) else []


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


STEPS = {"minute": 60, "hour": 3600, "day": 86400}
MAX_FILLED = 2000
"""Longest range whose empty buckets are drawn as zeros (the API leaves them out)."""


def buckets(body: Mapping[str, Any]) -> list[Any]:
    """Every bucket of the answer's range (epoch seconds), empty ones too when the range is
    known; else the buckets that have rows."""
    present = {row.get("bucket") for row in _rows(body)}
    start, end = body.get("start"), body.get("end")
    step = STEPS.get(str(body.get("interval")))
    numeric = all(isinstance(b, int) and not isinstance(b, bool) for b in present)
    if isinstance(start, int) and isinstance(end, int) and step and numeric:
        first = start // step * step
        if (end - first) // step <= MAX_FILLED:
            return sorted(present | set(range(first, end, step)))
    return sorted(present, key=str)


def series(body: Mapping[str, Any], metric: str) -> dict[str, Any]:
    """A chart: one dataset per group, one point per bucket (missing buckets count 0)."""
    interval = str(body.get("interval", "minute"))
    keys = buckets(body)
    index = {key: i for i, key in enumerate(keys)}
    datasets: dict[str, list[float]] = {}
    for row in _rows(body):
        label = group_label(row.get("group"))
        points = datasets.setdefault(label, [0.0] * len(keys))
        points[index[row.get("bucket")]] += _number(row.get(metric))
    return {
        "labels": [bucket_label(k, interval) for k in keys],
        "datasets": [{"label": k, "data": v} for k, v in sorted(datasets.items())],
    }


def latency(body: Mapping[str, Any]) -> dict[str, Any]:
    """p50 and p95 latency per bucket (rows of one group); gaps where nothing was measured."""
    interval = str(body.get("interval", "minute"))
    keys = buckets(body)
    index = {key: i for i, key in enumerate(keys)}
    out: dict[str, list[float | None]] = {"p50": [None] * len(keys), "p95": [None] * len(keys)}
    for row in _rows(body):
        lat = row.get("latency_ms")
        for name, points in out.items():
            if isinstance(lat, Mapping) and lat.get(name) is not None:
                points[index[row.get("bucket")]] = _number(lat.get(name))
    return {
        "labels": [bucket_label(k, interval) for k in keys],
        "datasets": [{"label": f"{k} (ms)", "data": v, "spanGaps": True} for k, v in out.items()],
    }


def totals(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Per group: requests, tokens and cost summed over the range, largest spend first."""
    acc: dict[str, dict[str, float]] = {}
    for row in _rows(body):
        label = group_label(row.get("group"))
        item = acc.setdefault(
            label,
            {
                "requests": 0.0,
                "prompt_tokens": 0.0,
                "completion_tokens": 0.0,
                "total_tokens": 0.0,
                "cost": 0.0,
            },
        )
        for key in item:
            item[key] += _number(row.get(key))
    ranked = sorted(acc.items(), key=lambda kv: (-kv[1]["cost"], -kv[1]["total_tokens"], kv[0]))
    return [{"group": k, **{m: v for m, v in item.items()}} for k, item in ranked]


def total_requests(body: Mapping[str, Any]) -> int:
    return int(sum(_number(row.get("requests")) for row in _rows(body)))
