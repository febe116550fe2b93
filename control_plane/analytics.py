"""The control plane's side of analytics: the `Analytics.Report` gRPC service that stores the
data planes' per-minute aggregates, the retention task, and the histogram math of queries.

See docs/analytics.md for the pipeline end to end.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
import math
import time
from collections.abc import Callable, Sequence

import grpc

from control_plane.store.analytics_tables import LATENCY_BUCKETS
from control_plane.store.sql_analytics import MinuteGroup, SqlAnalytics
from lockgate.v1 import cluster_pb2 as pb
from lockgate.v1 import cluster_pb2_grpc as pb_grpc

log = logging.getLogger("lockgate.cp.analytics")

LATENCY_BOUNDS_MS: tuple[float, ...] = (
    1, 2, 5, 10, 20, 30, 50, 75, 100, 150, 200, 300, 500, 750,
    1000, 1500, 2000, 3000, 5000, 7500, 10000, 30000, 60000,
)  # fmt: skip
"""The stored histogram's bucket bounds (ms, inclusive upper bounds; one more bucket above the
last). Data planes use the same list (data_plane.analytics_window); a batch with other bounds
is re-bucketed on arrival."""

if len(LATENCY_BOUNDS_MS) + 1 != LATENCY_BUCKETS:  # the table has one column per bucket
    raise RuntimeError("LATENCY_BOUNDS_MS does not match the analytics table's columns")

MAX_GROUPS_PER_BATCH = 200_000
"""A larger batch is refused (RESOURCE_EXHAUSTED): protection, not a real-world limit."""


def rebucket(bounds: Sequence[float], counts: Sequence[int]) -> tuple[int, ...]:
    """Counts over `bounds` (+ overflow) moved onto LATENCY_BOUNDS_MS: each source bucket goes
    to the first stored bucket whose bound is at least its own (so no estimate drops)."""
    if tuple(bounds) == LATENCY_BOUNDS_MS and len(counts) == LATENCY_BUCKETS:
        return tuple(counts)
    if len(counts) != len(bounds) + 1:
        raise ValueError(f"{len(counts)} latency buckets for {len(bounds)} bounds")
    out = [0] * LATENCY_BUCKETS
    for upper, n in zip((*bounds, math.inf), counts, strict=True):
        out[bisect.bisect_left(LATENCY_BOUNDS_MS, upper)] += n
    return tuple(out)


def percentile(counts: Sequence[int], q: float) -> float | None:
    """The q-quantile (0 < q <= 1) estimated from per-bucket counts over LATENCY_BOUNDS_MS,
    interpolating linearly inside the bucket that holds it (Prometheus' histogram_quantile).
    The overflow bucket has no upper bound: its quantiles are the last bound. None without
    samples."""
    total = sum(counts)
    if total == 0:
        return None
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if n and seen + n >= rank:
            if i == len(LATENCY_BOUNDS_MS):
                return LATENCY_BOUNDS_MS[-1]
            lower = LATENCY_BOUNDS_MS[i - 1] if i else 0.0
            upper = LATENCY_BOUNDS_MS[i]
            return lower + (upper - lower) * (rank - seen) / n
        seen += n
    return LATENCY_BOUNDS_MS[-1]


def groups_of(batch: pb.AnalyticsBatch) -> list[MinuteGroup]:
    """The batch's groups as store rows (histograms on the stored bounds)."""
    bounds = tuple(batch.latency_bounds_ms)
    out = []
    for minute in batch.minutes:
        if minute.minute % 60:
            raise ValueError(f"minute {minute.minute} is not at the start of a minute")
        for g in minute.groups:
            out.append(
                MinuteGroup(
                    minute=minute.minute,
                    route_id=g.route_id,
                    route=g.route,
                    service_id=g.service_id,
                    service=g.service,
                    consumer_id=g.consumer_id,
                    consumer=g.consumer,
                    status_class=g.status_class,
                    provider=g.provider,
                    model=g.model,
                    requests=g.requests,
                    buckets=rebucket(bounds, g.latency_buckets),
                    latency_sum_ms=g.latency_sum_ms,
                    prompt_tokens=g.prompt_tokens,
                    completion_tokens=g.completion_tokens,
                    cost_nanos=g.cost_nanos,
                )
            )
    return out


class AnalyticsService(pb_grpc.AnalyticsServicer):
    """Stores reports; answers only after they are committed (the node resends otherwise)."""

    def __init__(self, store: SqlAnalytics) -> None:
        self._store = store
        self.reports = 0
        """Reports stored since start (for the control plane's /metrics)."""

    async def Report(
        self,
        request: pb.AnalyticsBatch,
        context: grpc.aio.ServicerContext[pb.AnalyticsBatch, pb.AnalyticsAck],
    ) -> pb.AnalyticsAck:
        if not request.node_id or not request.instance_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "node_id and instance_id")
        try:
            groups = groups_of(request)
        except ValueError as exc:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            raise  # unreachable: abort raises
        if len(groups) > MAX_GROUPS_PER_BATCH:
            await context.abort(grpc.StatusCode.RESOURCE_EXHAUSTED, "too many groups")
        try:
            stored = await asyncio.to_thread(
                self._store.upsert, request.node_id, request.instance_id, request.seq, groups
            )
        except Exception:
            log.exception("analytics: could not store a report of node %s", request.node_id)
            await context.abort(grpc.StatusCode.UNAVAILABLE, "analytics store unavailable")
            raise
        self.reports += 1
        return pb.AnalyticsAck(seq=request.seq, groups=stored)


def add_analytics_service(server: grpc.aio.Server, service: AnalyticsService) -> None:
    """Serve `Analytics` on the cluster gRPC server (same port and mTLS as `Cluster`)."""
    pb_grpc.add_AnalyticsServicer_to_server(service, server)


async def prune_forever(
    store: SqlAnalytics,
    retention_days: float,
    *,
    every_s: float = 3600.0,
    clock: Callable[[], float] = time.time,
) -> None:
    """Delete minutes older than `retention_days`, at start and then every `every_s`, until
    cancelled. A failed prune is logged and retried next time."""
    while True:
        cutoff = int(clock() - retention_days * 86400)
        try:
            deleted = await asyncio.to_thread(store.prune, cutoff)
            if deleted:
                log.info("analytics: pruned %d rows older than %d days", deleted, retention_days)
        except Exception:
            log.exception("analytics: prune failed")
        await asyncio.sleep(every_s)
