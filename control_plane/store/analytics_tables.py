"""The analytics table: per-minute request aggregates reported by data planes.

It lives in the same SQLAlchemy `MetaData` as the config tables (control_plane.store.tables),
created by migration 0003. One row per (node, instance, minute, group): an instance is one
data-plane process start, a group one route/service/consumer/status class/LLM model. A report
replaces its rows (the node sends each minute's whole state) unless the row already holds a
higher sequence number. The latency histogram has one column per bucket so SQL can add
histograms up; `LATENCY_BOUNDS_MS` (control_plane.analytics) gives their bounds.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Double, Index, String, Table

from control_plane.store.tables import metadata

LATENCY_BUCKETS = 24
"""Histogram columns `lat_00` .. `lat_23`: 23 bounds plus the overflow bucket."""

BUCKET_COLUMNS = tuple(f"lat_{i:02d}" for i in range(LATENCY_BUCKETS))

GROUP_COLUMNS = ("route", "service", "consumer", "status_class", "provider", "model")
"""The dimensions a query may group by or filter on (ids are filterable too)."""

analytics_minutes = Table(
    "analytics_minutes",
    metadata,
    # The row's identity; no surrogate key (PostgreSQL's upserts would burn a sequence value
    # per reported group).
    Column("node_id", String(255), primary_key=True),
    Column("instance_id", String(64), primary_key=True),
    Column("minute", BigInteger, primary_key=True, autoincrement=False),
    Column("group_key", String(64), primary_key=True),
    Column("batch_seq", BigInteger, nullable=False),
    Column("route_id", String(36), nullable=False),
    Column("route", String(255), nullable=False),
    Column("service_id", String(36), nullable=False),
    Column("service", String(255), nullable=False),
    Column("consumer_id", String(36), nullable=False),
    Column("consumer", String(255), nullable=False),
    Column("status_class", String(8), nullable=False),
    Column("provider", String(64), nullable=False),
    Column("model", String(255), nullable=False),
    Column("requests", BigInteger, nullable=False),
    Column("latency_sum_ms", Double, nullable=False),
    *(Column(name, BigInteger, nullable=False) for name in BUCKET_COLUMNS),
    Column("prompt_tokens", BigInteger, nullable=False),
    Column("completion_tokens", BigInteger, nullable=False),
    Column("cost_nanos", BigInteger, nullable=False),
    Index("ix_analytics_minutes_minute", "minute"),
)
