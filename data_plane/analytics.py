"""The proxy's observer for analytics and metrics: `ProxyApp(..., observer=RequestObserver(...))`.

It runs once per routed request, after the log phase, on the proxy's event loop; it only reads
the request context and adds to the in-memory minute window (data_plane.analytics_window),
whose counts feed both the control plane's analytics (data_plane.analytics_sender ships them)
and the Prometheus metrics (data_plane.metrics).
"""

from __future__ import annotations

import logging

from data_plane.analytics_window import GroupKey, MinuteWindow, cost_nanos
from gateway.context import RequestContext

log = logging.getLogger("lockgate.analytics")

CLIENT_CLOSED = 499
"""Status counted for a request whose client went away before a response head (nginx's)."""

_SOURCES = {"service": "service", "exit": "kong", "error": "error"}
"""ctx.response_source -> Kong's `source` label (who produced the response)."""


class RequestObserver:
    """Counts each finished request into the minute window (which also feeds the Prometheus
    metrics, see data_plane.metrics). About 2 µs per request."""

    def __init__(self, window: MinuteWindow) -> None:
        self._window = window

    def __call__(self, ctx: RequestContext) -> None:
        # The proxy's contract: an observer never raises (this runs in the request's finally).
        try:
            self._observe(ctx)
        except Exception:
            log.exception("analytics: could not count request %s", ctx.request_id)

    def _observe(self, ctx: RequestContext) -> None:
        route, service, consumer = ctx.route, ctx.service, ctx.consumer
        route_id = route_name = service_id = service_name = consumer_id = consumer_name = ""
        if route is not None:
            route_id = route.id
            route_name = route.name or route_id
        if service is not None:
            service_id = service.id
            service_name = service.name or service_id
        if consumer is not None:
            consumer_id = consumer.id
            consumer_name = consumer.username or consumer.custom_id or consumer.id
        response = ctx.response
        status = response.status if response is not None else CLIENT_CLOSED
        source = _SOURCES.get(ctx.response_source, "kong")
        record = ctx.log_fields.get("lockgate.llm")
        if record is None:
            key: GroupKey = (
                route_id,
                route_name,
                service_id,
                service_name,
                consumer_id,
                consumer_name,
                status,
                "",
                "",
                source,
            )
            self._window.add(key, ctx.latencies.total_ms)
            return
        provider, model, prompt, completion, cost = _llm_record(record)
        key = (
            route_id,
            route_name,
            service_id,
            service_name,
            consumer_id,
            consumer_name,
            status,
            provider,
            model,
            source,
        )
        self._window.add(key, ctx.latencies.total_ms, prompt, completion, cost_nanos(cost))


def _llm_record(record: object) -> tuple[str, str, int, int, float]:
    """(provider, model, prompt tokens, completion tokens, cost) of ai-proxy's `lockgate.llm`
    record (docs/plugins/ai-proxy.md)."""
    if not isinstance(record, dict):  # a dict, as ai-proxy writes it (an ABC check is slower)
        return ("", "", 0, 0, 0.0)
    model = record.get("request_model") or record.get("response_model") or ""
    return (
        str(record.get("provider") or ""),
        str(model),
        int(record.get("prompt_tokens") or 0),
        int(record.get("completion_tokens") or 0),
        float(record.get("cost") or 0.0),
    )
