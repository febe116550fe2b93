"""Prometheus metrics of the control plane: `GET /metrics` on the UI port (8002), without
authentication, so scrapers need no token (it exposes counts only, no config or secrets).

- `lockgate_data_plane_nodes{sync_status}`: known nodes per status (every status, 0 included)
- `lockgate_config_version`: version of the snapshot being served (0 before the first)
- `lockgate_admin_api_requests_total{method,code}`: Admin API requests answered
- `lockgate_analytics_reports_total`: data-plane analytics reports stored
- whatever the `extra` writers add (main: the process's standard `process_*` figures and, on
  SQLite, `lockgate_sqlite_memory_bytes`)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import get_args

from fastapi import FastAPI
from fastapi.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from control_plane.nodes import NodeRegistry, SyncStatus
from control_plane.publisher import Publisher
from control_plane.store import sqlite_memory
from gateway.prometheus_text import CONTENT_TYPE, Exposition


class ControlPlaneMetrics:
    def __init__(
        self,
        nodes: NodeRegistry,
        publisher: Publisher,
        *,
        analytics_reports: Callable[[], int] = lambda: 0,
        extra: Iterable[Callable[[Exposition], None]] = (),
    ) -> None:
        self._nodes = nodes
        self._extra = list(extra)
        self._publisher = publisher
        self._reports = analytics_reports
        self.admin_requests: dict[tuple[str, int], int] = {}
        """(method, status) -> requests answered by the Admin API."""

    def render(self) -> str:
        """The Prometheus text (format 0.0.4)."""
        out = Exposition()
        by_status = dict.fromkeys(get_args(SyncStatus), 0)
        for node in self._nodes.list():
            by_status[node.sync_status] = by_status.get(node.sync_status, 0) + 1
        out.family("lockgate_data_plane_nodes", "gauge", "Data-plane nodes by sync status")
        for status, count in by_status.items():
            out.sample("lockgate_data_plane_nodes", (("sync_status", status),), count)
        snapshot = self._publisher.current
        out.family("lockgate_config_version", "gauge", "Version of the config snapshot served")
        out.sample("lockgate_config_version", (), snapshot.version if snapshot else 0)
        out.family("lockgate_admin_api_requests_total", "counter", "Admin API requests answered")
        for (method, code), count in sorted(self.admin_requests.items()):
            labels = (("method", method), ("code", str(code)))
            out.sample("lockgate_admin_api_requests_total", labels, count)
        out.family("lockgate_analytics_reports_total", "counter", "Analytics reports stored")
        out.sample("lockgate_analytics_reports_total", (), self._reports())
        for writer in self._extra:
            writer(out)
        return out.text()


def write_sqlite_memory(out: Exposition) -> None:
    """`lockgate_sqlite_memory_bytes`: SQLite's heap in this process (page caches included;
    bounded by control_plane.store.sqlite_memory.SOFT_HEAP_LIMIT_BYTES, give or take)."""
    used = sqlite_memory.memory_used()
    if used is not None:
        out.family("lockgate_sqlite_memory_bytes", "gauge", "Memory SQLite has allocated")
        out.sample("lockgate_sqlite_memory_bytes", (), used)


class AdminRequestCounter:
    """ASGI middleware counting the Admin API's answers by method and status (refused ones
    too: add it outermost, after create_admin_app)."""

    _METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})

    def __init__(self, app: ASGIApp, metrics: ControlPlaneMetrics) -> None:
        self._app = app
        self._metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        # Any other method string is a client's invention: one label value for all of them.
        method = scope["method"] if scope["method"] in self._METHODS else "OTHER"

        async def counting_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                key = (method, int(message["status"]))
                counts = self._metrics.admin_requests
                counts[key] = counts.get(key, 0) + 1
            await send(message)

        await self._app(scope, receive, counting_send)


def add_metrics_route(app: FastAPI, metrics: ControlPlaneMetrics) -> None:
    """Mount `GET /metrics` (no authentication) on `app` (the UI app)."""

    @app.get("/metrics", include_in_schema=False)
    async def prometheus() -> Response:  # on the loop: the node registry is not thread-safe
        return Response(metrics.render(), media_type=CONTENT_TYPE)
