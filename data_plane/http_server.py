"""The proxy port's HTTP/1.1 server: uvloop (when installed) + httptools, serving an ASGI app.

Why not uvicorn: per request it builds more than the proxy itself does (flow-control objects,
a cycle object, middleware); this server keeps one `Exchange` per request and writes a small
answer in one call. It implements what the proxy needs and no more: HTTP/1.1 keep-alive and
pipelining, chunked request and response bodies with backpressure both ways,
`Expect: 100-continue`, limits (431 for heads, 413 for declared bodies, 400 for malformed
requests), timeouts (idle keep-alive, reading a head, waiting for body bytes: 408) and a
graceful drain on shutdown. No lifespan, WebSocket or HTTP/2.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from dataclasses import dataclass

from data_plane.http_server_connection import App, ServerConnection


@dataclass(frozen=True, slots=True)
class Limits:
    """Per-connection limits (nginx's defaults where it has one)."""

    max_header_bytes: int = 32 * 1024
    """Request line plus headers (nginx: 4 x 8k large_client_header_buffers)."""
    max_headers: int = 100
    max_body: int = 16 << 20
    """Largest declared Content-Length accepted (the proxy also checks bodies as they come)."""
    keepalive_s: float = 60.0
    """Idle time after which a keep-alive connection is closed (nginx keepalive_timeout 75s)."""
    header_timeout_s: float = 60.0
    """Time to receive a request's head (nginx client_header_timeout)."""
    body_timeout_s: float = 60.0
    """Time between two reads of a request body (nginx client_body_timeout)."""


class HttpServer:
    """Serves `app` on listening sockets until `shutdown`."""

    def __init__(self, app: App, limits: Limits | None = None) -> None:
        self.app = app
        self.limits = limits or Limits()
        self.connections: set[ServerConnection] = set()
        self._servers: list[asyncio.Server] = []
        self._drained: asyncio.Event | None = None
        self.draining = False
        """Set by `stop_accepting`: every response head written from now on says
        `Connection: close` (responses already started finish on a kept-alive connection)."""

    def forget(self, conn: ServerConnection) -> None:
        """A connection closed."""
        self.connections.discard(conn)
        if not self.connections and self._drained is not None:
            self._drained.set()

    async def start(self, sockets: list[socket.socket]) -> None:
        """Start accepting on `sockets` (bound and listening)."""
        loop = asyncio.get_running_loop()
        for sock in sockets:
            server = await loop.create_server(lambda: ServerConnection(self), sock=sock)
            self._servers.append(server)

    def stop_accepting(self) -> None:
        """Close the listeners and start draining: open connections keep being served, each
        answering its next request with `Connection: close` (data_plane/shared_port.py)."""
        self.draining = True
        for server in self._servers:
            server.close()

    async def shutdown(self, timeout_s: float = 10.0) -> None:
        """Graceful drain: stop accepting, close idle connections, let requests in flight
        finish (their answers say `Connection: close`), then close whatever is left after
        `timeout_s`."""
        for server in self._servers:
            server.close()
        for conn in list(self.connections):
            conn.closing = True
            if conn.idle():
                conn.close()
        self._drained = asyncio.Event()
        if self.connections:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._drained.wait(), timeout_s)
        for conn in list(self.connections):
            if conn.active is not None and conn.active.task is not None:
                conn.active.task.cancel()
            if conn.transport is not None:
                conn.transport.abort()
        self.connections.clear()
        for server in self._servers:
            await server.wait_closed()
        self._servers.clear()
