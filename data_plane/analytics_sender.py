"""Ships a data plane's minute aggregates to the control plane (`Analytics.Report`, mTLS gRPC).

Every `interval_s` the sender sends each minute that changed since the control plane last
acknowledged it, whole (closed minutes and the running one), in one batch with the next
sequence number. The control plane upserts by (node, instance, minute, group) and keeps the
highest sequence, so a resend after a timeout, a lost connection or a control-plane restart
counts nothing twice; a minute is forgotten only once the control plane acknowledged its final
state. While no control plane answers, minutes stay in memory up to the window's bound; beyond
it the oldest are dropped with an error log (and `lockgate_analytics_dropped_requests_total`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable

import grpc

from data_plane.analytics_window import (
    LATENCY_BOUNDS_MS,
    STATUS,
    Counts,
    GroupKey,
    MinuteWindow,
)
from data_plane.analytics_window import status_class as to_class
from gateway.prometheus_text import Exposition
from lockgate.v1 import cluster_pb2 as pb
from lockgate.v1 import cluster_pb2_grpc as pb_grpc

log = logging.getLogger("lockgate.analytics")

Pending = list[tuple[int, dict[GroupKey, Counts]]]


def build_batch(node_id: str, instance_id: str, seq: int, pending: Pending) -> pb.AnalyticsBatch:
    """The batch for `pending` minutes, with status codes collapsed into classes."""
    batch = pb.AnalyticsBatch(
        node_id=node_id, instance_id=instance_id, seq=seq, latency_bounds_ms=LATENCY_BOUNDS_MS
    )
    for minute, groups in pending:
        by_class: dict[tuple[str, ...], Counts] = {}
        for key, counts in groups.items():
            # status code -> class; the source is not an analytics dimension
            ckey = (*key[:6], to_class(key[STATUS]), key[7], key[8])
            merged = by_class.get(ckey)
            if merged is None:
                by_class[ckey] = counts.copy()
            else:
                merged.merge(counts)
        out = batch.minutes.add(minute=minute)
        for group, counts in by_class.items():
            out.groups.add(
                route_id=group[0],
                route=group[1],
                service_id=group[2],
                service=group[3],
                consumer_id=group[4],
                consumer=group[5],
                status_class=group[6],
                provider=group[7],
                model=group[8],
                requests=counts.requests,
                latency_buckets=counts.buckets,
                latency_sum_ms=counts.latency_sum_ms,
                prompt_tokens=counts.prompt_tokens,
                completion_tokens=counts.completion_tokens,
                cost_nanos=counts.cost_nanos,
            )
    return batch


class AnalyticsSender:
    """Sends `window`'s unacknowledged minutes over the channel in use (`channel()`)."""

    def __init__(
        self,
        window: MinuteWindow,
        channel: Callable[[], grpc.aio.Channel],
        node_id: str,
        *,
        instance_id: str | None = None,
        interval_s: float = 10.0,
        timeout_s: float = 5.0,
    ) -> None:
        """`channel` returns the channel to the control plane in use (it may change on
        failover: data_plane.control_planes.ControlPlanes.channel). `instance_id` identifies
        this process's counts (default: a new uuid): a restarted node adds to what it counted
        before, it never replaces it."""
        self._window = window
        self._channel = channel
        self.node_id = node_id
        self.instance_id = instance_id or str(uuid.uuid4())
        self._interval = interval_s
        self._timeout = timeout_s
        self._seq = 0
        self._failures = 0
        self.batches_sent = 0
        self.last_error: str | None = None

    async def flush(self) -> bool:
        """Send what is unacknowledged now; True when the control plane stored it (or there
        was nothing to send). Never raises for an RPC failure: the minutes stay pending."""
        for minute, lost in self._window.pop_dropped():
            log.error(
                "analytics: dropped minute %s (%d requests) unsent: no control plane "
                "acknowledged it before the buffer filled",
                time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(minute)),
                lost,
            )
        pending = self._window.pending()
        if not pending:
            return True
        self._seq += 1
        batch = build_batch(self.node_id, self.instance_id, self._seq, pending)
        try:
            stub = pb_grpc.AnalyticsStub(self._channel())
            await stub.Report(batch, timeout=self._timeout)
        except (grpc.aio.AioRpcError, grpc.aio.UsageError) as exc:
            self._failed(exc, len(pending))
            return False
        self._window.acknowledged(pending)
        self.batches_sent += 1
        if self._failures:
            log.info(
                "analytics: control plane reachable again; delivered %d minutes after %d "
                "failed attempts",
                len(pending),
                self._failures,
            )
        self._failures = 0
        self.last_error = None
        return True

    def _failed(self, exc: grpc.aio.AioRpcError | grpc.aio.UsageError, minutes: int) -> None:
        detail = exc.code().name if isinstance(exc, grpc.aio.AioRpcError) else str(exc)
        self.last_error = detail
        self._failures += 1
        if self._failures == 1:
            log.warning(
                "analytics: could not report to the control plane (%s); keeping %d minutes "
                "and retrying every %.0f s",
                detail,
                minutes,
                self._interval,
            )

    async def run(self) -> None:
        """Flush every `interval_s` until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            await self.flush()

    async def close(self, timeout_s: float = 3.0) -> None:
        """One last flush at shutdown (bounded by `timeout_s`); says what could not be sent."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.flush(), timeout_s)
        unsent = self._window.unsent_requests()
        if unsent:
            log.warning("analytics: %d counted requests not delivered at shutdown", unsent)

    def write_metrics(self, out: Exposition) -> None:
        """The sender's own Prometheus families (add to DataPlaneMetrics as a writer)."""
        out.family(
            "lockgate_analytics_buffered_minutes",
            "gauge",
            "Minutes of analytics held until the control plane acknowledges them",
        )
        out.sample("lockgate_analytics_buffered_minutes", (), self._window.minutes)
        out.family(
            "lockgate_analytics_unsent_requests",
            "gauge",
            "Counted requests the control plane has not acknowledged yet",
        )
        out.sample("lockgate_analytics_unsent_requests", (), self._window.unsent_requests())
        out.family(
            "lockgate_analytics_dropped_requests_total",
            "counter",
            "Counted requests dropped unsent because the buffer was full",
        )
        out.sample("lockgate_analytics_dropped_requests_total", (), self._window.dropped_requests)
