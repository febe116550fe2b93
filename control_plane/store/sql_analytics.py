"""`SqlAnalytics`: the analytics store (table `analytics_minutes`) over a SQLAlchemy engine, on
SQLite or PostgreSQL, beside the config `Store` (same database, same migrations).

Writes are idempotent upserts: a report replaces what an earlier report of the same node
instance said about the same minute and group, unless the stored row came from a later batch
(higher `batch_seq`), so retries and reordered deliveries never count anything twice.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import ColumnElement, Engine, delete, func, literal_column, or_, select
from sqlalchemy.dialects import postgresql, sqlite

from control_plane.store.analytics_tables import BUCKET_COLUMNS, GROUP_COLUMNS, analytics_minutes
from control_plane.store.sql import create_store_engine

_T = analytics_minutes
_WRITE = {"lockgate_write": True}
"""SqlStore's execution option: on SQLite the transaction starts with BEGIN IMMEDIATE, so
writers queue on the lock instead of failing to upgrade a read lock."""
_KEY = ("node_id", "instance_id", "minute", "group_key")
_BY_ID = {"route": "route_id", "service": "service_id", "consumer": "consumer_id"}


@dataclass(frozen=True, slots=True)
class MinuteGroup:
    """One reported group of one minute (see AnalyticsGroup in proto/lockgate/v1)."""

    minute: int
    route_id: str = ""
    route: str = ""
    service_id: str = ""
    service: str = ""
    consumer_id: str = ""
    consumer: str = ""
    status_class: str = ""
    provider: str = ""
    model: str = ""
    requests: int = 0
    buckets: tuple[int, ...] = (0,) * len(BUCKET_COLUMNS)
    latency_sum_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cost_nanos: int = 0

    def group_key(self) -> str:
        parts = (
            self.route_id,
            self.route,
            self.service_id,
            self.service,
            self.consumer_id,
            self.consumer,
            self.status_class,
            self.provider,
            self.model,
        )
        return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class AnalyticsQuery:
    """Rows with `start <= minute < end` (epoch seconds), bucketed every `interval` seconds
    (aligned to UTC), grouped by `group_by` (names from GROUP_COLUMNS), filtered by `filters`
    (dimension -> value; route/service/consumer match a name or an id)."""

    start: int
    end: int
    interval: int
    group_by: tuple[str, ...] = ()
    filters: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Aggregate:
    """One bucket of one group: sums over every node, instance and minute in it."""

    bucket: int
    group: dict[str, str]
    requests: int
    buckets: tuple[int, ...]
    prompt_tokens: int
    completion_tokens: int
    cost_nanos: int


class SqlAnalytics:
    """Thread-safe (one connection per call); blocking: call it off the event loop."""

    def __init__(self, engine: Engine, *, owns_engine: bool = False) -> None:
        """`engine`: the database the config store uses, already migrated (open_store runs
        the migrations, 0003 created the table)."""
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        self._owns_engine = owns_engine

    @staticmethod
    def open(database_url: str) -> SqlAnalytics:
        """A store on its own connection pool to `database_url` (open the config store first:
        it migrates). Not for in-memory SQLite, whose every engine is another database."""
        return SqlAnalytics(create_store_engine(database_url), owns_engine=True)

    def upsert(
        self, node_id: str, instance_id: str, batch_seq: int, groups: Sequence[MinuteGroup]
    ) -> int:
        """Store one report's groups in one transaction; returns how many were given."""
        if not groups:
            return 0
        rows = [_row(node_id, instance_id, batch_seq, g) for g in groups]
        insert = postgresql.insert(_T) if self._postgres else sqlite.insert(_T)
        values = [c.name for c in _T.columns if c.name not in _KEY]
        stmt = insert.on_conflict_do_update(
            index_elements=list(_KEY),
            set_={name: insert.excluded[name] for name in values},
            where=insert.excluded.batch_seq >= _T.c.batch_seq,
        )
        with self._engine.connect().execution_options(**_WRITE) as conn, conn.begin():
            conn.execute(stmt, rows)
        return len(rows)

    def query(self, q: AnalyticsQuery) -> list[Aggregate]:
        """Aggregates ordered by bucket, then group values."""
        # Inlined (a validated int): a bound parameter would appear twice, once in SELECT and
        # once in GROUP BY, and PostgreSQL does not see two parameters as one expression.
        step: ColumnElement[int] = literal_column(str(int(q.interval)))
        bucket = (_T.c.minute - _T.c.minute % step).label("bucket")
        groups = [_T.c[name] for name in q.group_by]
        sums = [
            func.sum(_T.c.requests),
            func.sum(_T.c.prompt_tokens),
            func.sum(_T.c.completion_tokens),
            func.sum(_T.c.cost_nanos),
            *(func.sum(_T.c[name]) for name in BUCKET_COLUMNS),
        ]
        where: list[ColumnElement[bool]] = [_T.c.minute >= q.start, _T.c.minute < q.end]
        for name, value in q.filters.items():
            by_id = _BY_ID.get(name)
            column = _T.c[name]
            where.append(or_(column == value, _T.c[by_id] == value) if by_id else column == value)
        stmt = (
            select(bucket, *groups, *sums)
            .where(*where)
            .group_by(bucket, *groups)
            .order_by(bucket, *groups)
        )
        with self._engine.connect() as conn:
            result = conn.execute(stmt).all()
        out = []
        n = len(groups)
        for row in result:
            numbers = [int(v or 0) for v in row[1 + n :]]
            out.append(
                Aggregate(
                    bucket=int(row[0]),
                    group={name: row[1 + i] for i, name in enumerate(q.group_by)},
                    requests=numbers[0],
                    prompt_tokens=numbers[1],
                    completion_tokens=numbers[2],
                    cost_nanos=numbers[3],
                    buckets=tuple(numbers[4:]),
                )
            )
        return out

    def prune(self, older_than: int) -> int:
        """Delete minutes before `older_than` (epoch seconds); returns the rows deleted."""
        with self._engine.connect().execution_options(**_WRITE) as conn, conn.begin():
            deleted = conn.execute(delete(_T).where(_T.c.minute < older_than)).rowcount
        return int(deleted)

    def close(self) -> None:
        if self._owns_engine:
            self._engine.dispose()


def _row(node_id: str, instance_id: str, batch_seq: int, g: MinuteGroup) -> dict[str, Any]:
    if len(g.buckets) != len(BUCKET_COLUMNS):
        raise ValueError(f"expected {len(BUCKET_COLUMNS)} latency buckets, got {len(g.buckets)}")
    row: dict[str, Any] = {
        "node_id": node_id,
        "instance_id": instance_id,
        "minute": g.minute,
        "group_key": g.group_key(),
        "batch_seq": batch_seq,
        "requests": g.requests,
        "latency_sum_ms": g.latency_sum_ms,
        "prompt_tokens": g.prompt_tokens,
        "completion_tokens": g.completion_tokens,
        "cost_nanos": g.cost_nanos,
        "route_id": g.route_id,
        "service_id": g.service_id,
        "consumer_id": g.consumer_id,
    }
    for name in GROUP_COLUMNS:
        row[name] = getattr(g, name)
    row.update(zip(BUCKET_COLUMNS, g.buckets, strict=True))
    return row
