"""The analytics store on SQLite and PostgreSQL: migration 0003, idempotent upserts (resends and
reordered batches count once), queries (buckets, group by, filters), retention."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import MetaData, inspect

from control_plane.analytics import prune_forever
from control_plane.store import open_store
from control_plane.store.analytics_tables import analytics_minutes
from control_plane.store.sql import create_store_engine
from control_plane.store.sql_analytics import AnalyticsQuery, MinuteGroup, SqlAnalytics

T0 = 1_700_000_040  # a minute start (UTC 22:14:00 on 2023-11-14)
HOUR = 3600


def buckets(**at: int) -> tuple[int, ...]:
    """A histogram with counts at bucket indexes: buckets(b3=2) -> 2 samples in bucket 3."""
    out = [0] * 24
    for name, n in at.items():
        out[int(name[1:])] = n
    return tuple(out)


@pytest.fixture
def analytics(database_url: str) -> Iterator[SqlAnalytics]:
    open_store(database_url).close()  # migrates, as the control plane does at start
    store = SqlAnalytics.open(database_url)
    yield store
    store.close()


def group(minute: int = T0, requests: int = 1, **fields: object) -> MinuteGroup:
    values: dict[str, object] = {
        "route_id": "r-1",
        "route": "chat",
        "service_id": "s-1",
        "service": "openai",
        "status_class": "2xx",
        "requests": requests,
        "buckets": buckets(b4=requests),
    }
    values.update(fields)
    return MinuteGroup(minute=minute, **values)  # type: ignore[arg-type]


def totals(store: SqlAnalytics, **query: object) -> list[tuple[int, dict[str, str], int]]:
    q = AnalyticsQuery(
        start=int(query.pop("start", T0 - HOUR)),  # type: ignore[call-overload]
        end=int(query.pop("end", T0 + HOUR)),  # type: ignore[call-overload]
        interval=int(query.pop("interval", 60)),  # type: ignore[call-overload]
        **query,  # type: ignore[arg-type]
    )
    return [(r.bucket, r.group, r.requests) for r in store.query(q)]


def _table_of(diff: Any) -> str:
    """The table an Alembic autogenerate diff item is about."""
    if isinstance(diff, list):  # modify_* items come as a list of tuples
        return str(diff[0][2])
    kind, obj = diff[0], diff[1]
    if kind.endswith("_table"):
        return str(obj.name)
    if kind.endswith("_index") or kind.endswith("_constraint"):
        return str(obj.table.name)
    return str(diff[2])


def test_migration_0003_creates_the_table_as_defined(
    analytics: SqlAnalytics, database_url: str
) -> None:
    engine = create_store_engine(database_url)
    try:
        assert inspect(engine).has_table("analytics_minutes")
        only_ours = MetaData()
        analytics_minutes.to_metadata(only_ours)
        with engine.connect() as conn:
            drift = compare_metadata(MigrationContext.configure(conn), only_ours)
        assert [d for d in drift if _table_of(d) == "analytics_minutes"] == []
    finally:
        engine.dispose()


def test_a_resent_batch_counts_once(analytics: SqlAnalytics) -> None:
    batch = [group(requests=3), group(requests=2, status_class="5xx")]
    analytics.upsert("node-1", "i-1", 1, batch)
    analytics.upsert("node-1", "i-1", 1, batch)  # the ack was lost: the node resends
    analytics.upsert("node-1", "i-1", 2, batch)  # and again, in a later batch
    assert totals(analytics) == [(T0, {}, 5)]


def test_a_minute_report_replaces_the_earlier_one_and_older_batches_never_win(
    analytics: SqlAnalytics,
) -> None:
    analytics.upsert("node-1", "i-1", 1, [group(requests=3)])
    analytics.upsert("node-1", "i-1", 3, [group(requests=7)])  # the minute went on
    analytics.upsert("node-1", "i-1", 2, [group(requests=5)])  # a delayed, older delivery
    assert totals(analytics) == [(T0, {}, 7)]


def test_nodes_and_instances_add_up(analytics: SqlAnalytics) -> None:
    analytics.upsert("node-1", "i-1", 1, [group(requests=3)])
    analytics.upsert("node-1", "i-2", 1, [group(requests=4)])  # the node restarted
    analytics.upsert("node-2", "i-9", 1, [group(requests=5)])
    assert totals(analytics) == [(T0, {}, 12)]


def test_buckets_group_by_and_filters(analytics: SqlAnalytics) -> None:
    analytics.upsert(
        "node-1",
        "i-1",
        1,
        [
            group(T0, 2),
            group(T0 + 60, 3),
            group(T0 + 60, 1, status_class="4xx"),
            group(T0 + HOUR, 4, consumer_id="c-1", consumer="alice"),
            group(
                T0 + 120,
                5,
                route_id="r-2",
                route="embed",
                provider="openai",
                model="gpt-4o",
                prompt_tokens=50,
                completion_tokens=20,
                cost_nanos=1_500,
            ),
        ],
    )
    assert totals(analytics, end=T0 + 2 * HOUR) == [
        (T0, {}, 2),
        (T0 + 60, {}, 4),
        (T0 + 120, {}, 5),
        (T0 + HOUR, {}, 4),
    ]
    hour = T0 // HOUR * HOUR
    assert totals(
        analytics, start=hour, end=hour + 2 * HOUR, interval=HOUR, group_by=("route",)
    ) == [
        (hour, {"route": "chat"}, 6),
        (hour, {"route": "embed"}, 5),
        (hour + HOUR, {"route": "chat"}, 4),
    ]
    assert totals(analytics, group_by=("status_class", "consumer"), end=T0 + 2 * HOUR) == [
        (T0, {"status_class": "2xx", "consumer": ""}, 2),
        (T0 + 60, {"status_class": "2xx", "consumer": ""}, 3),
        (T0 + 60, {"status_class": "4xx", "consumer": ""}, 1),
        (T0 + 120, {"status_class": "2xx", "consumer": ""}, 5),
        (T0 + HOUR, {"status_class": "2xx", "consumer": "alice"}, 4),
    ]
    # route/service/consumer filters match a name or an id
    for value in ("embed", "r-2"):
        assert totals(analytics, filters={"route": value}) == [(T0 + 120, {}, 5)]
    assert totals(analytics, filters={"consumer": "c-1"}, end=T0 + 2 * HOUR) == [(T0 + HOUR, {}, 4)]
    assert totals(analytics, filters={"status_class": "4xx", "service": "openai"}) == [
        (T0 + 60, {}, 1)
    ]
    # the time range is half-open: [start, end)
    assert totals(analytics, start=T0 + 60, end=T0 + 120) == [(T0 + 60, {}, 4)]
    llm = analytics.query(
        AnalyticsQuery(T0, T0 + HOUR, HOUR, ("provider", "model"), {"provider": "openai"})
    )
    assert [(r.group, r.prompt_tokens, r.completion_tokens, r.cost_nanos) for r in llm] == [
        ({"provider": "openai", "model": "gpt-4o"}, 50, 20, 1_500)
    ]
    everything = analytics.query(AnalyticsQuery(T0, T0 + 2 * HOUR, 86400))
    assert [r.buckets for r in everything] == [buckets(b4=15)]


def test_prune_deletes_only_older_minutes(analytics: SqlAnalytics) -> None:
    analytics.upsert("node-1", "i-1", 1, [group(T0 - 86400, 1), group(T0, 2)])
    assert analytics.prune(T0) == 1
    assert totals(analytics, start=T0 - 2 * 86400) == [(T0, {}, 2)]
    assert analytics.prune(T0) == 0


def test_a_batch_with_a_wrong_histogram_is_refused_whole(analytics: SqlAnalytics) -> None:
    with pytest.raises(ValueError, match="24 latency buckets"):
        analytics.upsert("node-1", "i-1", 1, [group(), group(buckets=(1, 2))])
    assert totals(analytics) == []


async def test_the_retention_task_prunes_at_start_and_then_periodically(
    analytics: SqlAnalytics,
) -> None:
    now = [float(T0)]
    analytics.upsert("node-1", "i-1", 1, [group(T0 - 31 * 86400, 1), group(T0 - 29 * 86400, 2)])
    task = asyncio.create_task(prune_forever(analytics, 30, every_s=0.05, clock=lambda: now[0]))

    def kept() -> list[int]:
        return [n for _, _, n in totals(analytics, start=0, end=T0, interval=86400)]

    try:
        await eventually(lambda: kept() == [2])  # pruned at start
        now[0] += 2 * 86400  # two days later the other minute is past retention too
        await eventually(lambda: kept() == [])
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def eventually(check: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)
