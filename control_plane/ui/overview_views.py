"""Overview (the proxy URL and how to point the OpenAI SDK at it, node health, recent
requests) and Analytics (requests by status, latency, tokens and cost by consumer, model and
provider over a chosen time range)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response

from control_plane.admin.kinds import ROUTES
from control_plane.ui import analytics as charts
from control_plane.ui.context import Ui
from control_plane.ui.entity_views import list_rows
from control_plane.ui.extensions import AnalyticsQuery

log = logging.getLogger("lockgate.cp.ui")
ANALYTICS_PATH = "/analytics/requests"


async def _ask(ui: Ui, query: AnalyticsQuery) -> tuple[Mapping[str, Any] | None, str | None]:
    """The analytics body, or the message to show instead."""
    if ui.analytics is None:
        return None, "Analytics is not available on this control plane."
    try:
        return await ui.analytics(query), None
    except Exception:  # a failing query must not take the page down with it
        log.exception("analytics query failed: %s", query)
        return None, "The analytics query failed; see the control plane's log."


def add_overview_routes(app: FastAPI, ui: Ui) -> None:
    """Mount `/` (Overview) and `/analytics`."""

    @app.get("/")
    async def overview(request: Request) -> Response:
        session = await ui.session(request)
        rows, _ = await list_rows(ui, ROUTES, size=1)
        paths = rows[0].get("paths") if rows else None
        route_path = paths[0] if paths else "/anything"
        nodes = ui.nodes.list()
        body, message = await _ask(ui, charts.query(charts.DEFAULT_RANGE, (charts.STATUS_GROUP,)))
        snap = ui.publisher.current
        return ui.page(
            request,
            session,
            "overview.html",
            proxy_url=ui.config.proxy_url,
            route_path=route_path,
            nodes_total=len(nodes),
            nodes_connected=sum(n.sync_status != "disconnected" for n in nodes),
            nodes_in_sync=sum(n.sync_status == "in_sync" for n in nodes),
            config_version=snap.version if snap else 0,
            requests_chart=charts.series(body, "requests") if body is not None else None,
            total_requests=charts.total_requests(body) if body is not None else 0,
            analytics_message=message,
        )

    @app.get("/analytics")
    async def analytics(request: Request) -> Response:
        session = await ui.session(request)
        ui.allow(session, "GET", ANALYTICS_PATH)
        span = charts.time_range(request.query_params.get("range"))
        by_status, message = await _ask(ui, charts.query(span, (charts.STATUS_GROUP,)))
        overall, _ = await _ask(ui, charts.query(span))
        breakdowns: dict[str, list[dict[str, Any]]] = {}
        charts_data: dict[str, Any] = {}
        if by_status is not None and overall is not None:
            charts_data["status"] = charts.series(by_status, "requests")
            charts_data["latency"] = charts.latency(overall)
            for dimension in charts.DIMENSIONS:
                body, _ = await _ask(ui, charts.query(span, (dimension,)))
                rows = charts.totals(body) if body is not None else []
                breakdowns[dimension] = rows
                labels = [r["group"] for r in rows]
                charts_data[f"tokens_{dimension}"] = {
                    "labels": labels,
                    "datasets": [
                        {"label": "prompt tokens", "data": [r["prompt_tokens"] for r in rows]},
                        {
                            "label": "completion tokens",
                            "data": [r["completion_tokens"] for r in rows],
                        },
                    ],
                }
                charts_data[f"cost_{dimension}"] = {
                    "labels": labels,
                    "datasets": [{"label": "cost (USD)", "data": [r["cost"] for r in rows]}],
                }
        return ui.page(
            request,
            session,
            "analytics.html",
            ranges=charts.RANGES,
            span=span,
            charts=charts_data,
            breakdowns=breakdowns,
            dimensions=charts.DIMENSIONS,
            total_requests=charts.total_requests(overall) if overall is not None else 0,
            analytics_message=message,
        )
