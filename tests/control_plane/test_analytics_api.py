"""`GET /analytics/requests`: the answer's shape (what the UI charts read), percentiles from the
merged histograms, time alignment, defaults, every role may read, clear 400s."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from control_plane.admin.app import create_admin_app
from control_plane.analytics import LATENCY_BOUNDS_MS, percentile, rebucket
from control_plane.analytics_api import AnalyticsSource
from control_plane.store import Store
from control_plane.store.sql_analytics import MinuteGroup, SqlAnalytics
from tests.control_plane.conftest import TOKEN

T0 = 1_700_000_040  # 2023-11-14T22:14:00Z
NOW = T0 + 600


def hist(**at: int) -> tuple[int, ...]:
    out = [0] * 24
    for name, n in at.items():
        out[int(name[1:])] = n
    return tuple(out)


@pytest.fixture
def analytics(store: Store, tmp_path: Path) -> Iterator[SqlAnalytics]:
    opened = SqlAnalytics.open(f"sqlite:///{tmp_path / 'lockgate.db'}")
    yield opened
    opened.close()


@pytest.fixture
def api(store: Store, analytics: SqlAnalytics) -> Iterator[TestClient]:
    from control_plane.analytics_api import add_analytics_routes

    app = create_admin_app(store, TOKEN, lambda e: None)
    add_analytics_routes(app, analytics, clock=lambda: NOW)
    with TestClient(app, headers={"Kong-Admin-Token": TOKEN}) as client:
        yield client


def seed(analytics: SqlAnalytics) -> None:
    common: dict[str, Any] = {
        "route_id": "r-1",
        "route": "chat",
        "service_id": "s-1",
        "service": "openai",
    }
    # 100 requests: 50 in (5, 10] ms, 45 in (10, 20], 5 in (100, 150]
    alice = MinuteGroup(
        T0,
        status_class="2xx",
        consumer_id="c-1",
        consumer="alice",
        provider="openai",
        model="gpt-4o",
        requests=100,
        buckets=hist(b3=50, b4=45, b9=5),
        prompt_tokens=1000,
        completion_tokens=400,
        cost_nanos=6_500_000,
        **common,
    )
    errors = MinuteGroup(T0 + 60, status_class="5xx", requests=2, buckets=hist(b0=2), **common)
    analytics.upsert("node-1", "i-1", 1, [alice, errors])
    # another node, same minute and group: histograms and tokens add up
    analytics.upsert("node-2", "i-7", 1, [alice])


def test_answer_shape_with_groups_and_percentiles(api: TestClient, analytics: SqlAnalytics) -> None:
    seed(analytics)
    reply = api.get(
        "/analytics/requests",
        params={
            "start": str(T0),
            "end": str(T0 + 120),
            "group_by": "consumer,status_class,model",
        },
    )
    assert reply.status_code == 200, reply.text
    assert reply.json() == {
        "data": [
            {
                "bucket": T0,
                "group": {"consumer": "alice", "status_class": "2xx", "model": "gpt-4o"},
                "requests": 200,
                # rank 100 of 200 is the last of bucket (5, 10]; 190 is the last of (10, 20];
                # 198 is 8/10 into (100, 150]
                "latency_ms": {"p50": 10.0, "p95": 20.0, "p99": 140.0},
                "prompt_tokens": 2000,
                "completion_tokens": 800,
                "total_tokens": 2800,
                "cost": 0.013,
            },
            {
                "bucket": T0 + 60,
                "group": {"consumer": None, "status_class": "5xx", "model": None},
                "requests": 2,
                "latency_ms": {"p50": 0.5, "p95": 0.95, "p99": 0.99},
                "prompt_tokens": 0,
                "completion_tokens": 0,
                "total_tokens": 0,
                "cost": 0.0,
            },
        ],
        "start": T0,
        "end": T0 + 120,
        "interval": "minute",
    }


def test_defaults_alignment_and_iso_times(api: TestClient, analytics: SqlAnalytics) -> None:
    seed(analytics)
    default = api.get("/analytics/requests").json()
    assert (default["start"], default["end"], default["interval"]) == (NOW - 3600, NOW, "minute")
    assert [(r["bucket"], r["group"], r["requests"]) for r in default["data"]] == [
        (T0, {}, 200),
        (T0 + 60, {}, 2),
    ]
    hourly = api.get(
        "/analytics/requests",
        params={
            "start": "2023-11-14T22:30:00Z",
            "end": "2023-11-14T22:31:00+00:00",
            "interval": "hour",
        },
    ).json()
    # aligned outwards to whole hours: 22:00 .. 23:00
    assert (hourly["start"], hourly["end"]) == (1_699_999_200, 1_700_002_800)
    assert [(r["bucket"], r["requests"]) for r in hourly["data"]] == [(1_699_999_200, 202)]
    filtered = api.get(
        "/analytics/requests", params={"status_class": "5xx", "route": "r-1", "interval": "day"}
    ).json()
    assert [r["requests"] for r in filtered["data"]] == [2]


def test_a_viewer_may_read(api: TestClient, analytics: SqlAnalytics) -> None:
    seed(analytics)
    created = api.post("/admin-tokens", json={"name": "reader", "role": "viewer"})
    assert created.status_code == 201, created.text
    viewer = {"Kong-Admin-Token": created.json()["token"]}
    reply = api.get("/analytics/requests", headers=viewer)
    assert reply.status_code == 200
    assert sum(r["requests"] for r in reply.json()["data"]) == 202
    assert api.get("/analytics/requests", headers={"Kong-Admin-Token": "nope"}).status_code == 401


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"interval": "week"}, "interval: expected minute, hour or day, got 'week'"),
        ({"start": "yesterday"}, "start: expected epoch seconds or an ISO 8601 time with a zone"),
        ({"end": "2023-11-14T22:00:00"}, "end: expected epoch seconds or an ISO 8601 time with"),
        ({"start": str(NOW), "end": str(NOW - 60)}, "start must be before end"),
        ({"group_by": "route,colour"}, "group_by: unknown dimension 'colour'; expected any of"),
        ({"status_class": "200"}, "status_class: expected 1xx, 2xx, 3xx, 4xx or 5xx, got '200'"),
        ({"rout": "chat"}, "unknown query parameter 'rout'; expected one of"),
        ({"start": "0", "end": str(NOW)}, "minute buckets requested (at most 10000)"),
    ],
)
def test_bad_parameters_are_400s_naming_the_parameter(
    api: TestClient, params: dict[str, str], message: str
) -> None:
    reply = api.get("/analytics/requests", params=params)
    assert reply.status_code == 400
    assert message in reply.json()["message"]


def test_percentiles_interpolate_inside_buckets_and_stop_at_the_last_bound() -> None:
    assert percentile([0] * 24, 0.5) is None
    # 10 samples in (20, 30]: the median is half-way through the bucket
    assert percentile(hist(b5=10), 0.5) == 25.0
    assert percentile(hist(b23=4), 0.99) == LATENCY_BOUNDS_MS[-1]  # slower than every bound
    assert percentile(hist(b0=1, b23=99), 0.01) == 1.0


def test_other_bounds_are_rebucketed_onto_the_stored_ones() -> None:
    # a node with bounds (3, 10, 100000): counts go to the first stored bound >= theirs
    assert rebucket((3, 10, 100_000), (1, 2, 3, 4)) == hist(b2=1, b3=2, b23=7)
    assert rebucket(LATENCY_BOUNDS_MS, hist(b7=1)) == hist(b7=1)
    with pytest.raises(ValueError, match="3 latency buckets for 3 bounds"):
        rebucket((1, 2, 3), (1, 2, 3))


async def test_the_ui_source_answers_like_the_route(analytics: SqlAnalytics) -> None:
    seed(analytics)

    class Query:
        start = float(T0)
        end = float(T0 + 60)
        interval = "minute"
        group_by = ("route",)

    body = await AnalyticsSource(analytics, clock=lambda: NOW)(Query())
    assert [(r["bucket"], r["group"], r["requests"]) for r in body["data"]] == [
        (T0, {"route": "chat"}, 200)
    ]
