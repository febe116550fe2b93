"""The per-request context that the proxy builds and plugins read and change.

It models what Kong's PDK exposes. As in nginx, `request.headers` is one live set: a plugin that
sets a header with `kong.service.request.set_header` is seen by later plugins reading
`kong.request.get_header`, and that same set is what goes upstream.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

from gateway.entities import Route, Service
from gateway.headers import Headers

ResponseSource = Literal["service", "exit", "error"]


@dataclass(slots=True)
class Request:
    """The client's request as the proxy received it (headers excepted, see module doc).

    data_plane.proxy builds it with positional arguments (per request, a keyword call costs
    more): keep the fields' order in step with `_context` there."""

    method: str
    scheme: str
    host: str
    port: int
    raw_path: str
    path: str
    raw_query: str
    headers: Headers
    body: bytes
    client_ip: str
    http_version: str = "1.1"
    start_time: float = field(default_factory=time.time)


@dataclass(slots=True)
class Upstream:
    """What the proxy will send and where; the router fills it in, plugins may change it."""

    scheme: str = "http"
    host: str = ""
    port: int = 80
    path: str = "/"
    query: str = ""
    method: str = "GET"
    body: bytes | None = None
    """Replacement body; None forwards the client's body unchanged."""
    host_header: str | None = None
    """Host header to send; None means the router's choice (service host or preserve_host)."""
    connect_timeout_ms: int = 60000
    read_timeout_ms: int = 60000
    write_timeout_ms: int = 60000
    retries: int = 5
    buffer_response: bool = False
    """Set by a plugin (kong.service.request.enable_buffering) that needs the whole body."""


@dataclass(frozen=True, slots=True)
class ConsumerInfo:
    id: str
    username: str | None = None
    custom_id: str | None = None


@dataclass(frozen=True, slots=True)
class CredentialInfo:
    id: str
    consumer_id: str


@dataclass(slots=True)
class ResponseHead:
    """Status and headers of the response on its way to the client; header_filter may change it."""

    status: int
    headers: Headers


@dataclass(frozen=True, slots=True)
class Exit:
    """A short-circuit response produced by a plugin (kong.response.exit / error)."""

    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = ()


@dataclass(slots=True)
class Latencies:
    """Kong's latency figures of one request, in milliseconds (set by the proxy)."""

    proxy_ms: float = 0.0
    """Gateway time before the upstream was called (Kong's X-Kong-Proxy-Latency)."""
    upstream_ms: float | None = None
    """Time to the upstream's response head (X-Kong-Upstream-Latency); None if not proxied."""
    total_ms: float = 0.0
    """Until the response was fully sent."""


@dataclass(slots=True)
class RequestContext:
    request: Request
    upstream: Upstream
    request_id: str
    route: Route | None = None
    service: Service | None = None
    consumer: ConsumerInfo | None = None
    credential: CredentialInfo | None = None
    shared: dict[str, object] = field(default_factory=dict)
    """kong.ctx.shared: request-scoped, shared by all plugins."""
    plugin_data: dict[str, dict[str, object]] = field(default_factory=dict)
    """kong.ctx.plugin: request-scoped, one dict per plugin instance id."""
    response_headers: Headers = field(default_factory=Headers)
    """Headers a plugin set for the client response before it exists (kong.response.set_header)."""
    response: ResponseHead | None = None
    response_source: ResponseSource = "service"
    log_fields: dict[str, object] = field(default_factory=dict)
    """kong.log.set_serialize_value: dotted keys to values, read by the log phase and analytics."""
    latencies: Latencies = field(default_factory=Latencies)

    def plugin_state(self, instance_id: str) -> dict[str, object]:
        """The kong.ctx.plugin table of one plugin instance, created on first use."""
        state = self.plugin_data.get(instance_id)
        if state is None:
            state = self.plugin_data[instance_id] = {}
        return state
