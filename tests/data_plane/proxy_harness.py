"""The real-HTTP in-process proxy harness: `serve_proxy` runs the data plane's ProxyApp with a
compiled runtime on a free loopback port (`proxy_client`: with an httpx client in front of it),
`closed_port` names a port nothing listens on."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Mapping
from typing import Any

import httpx

from data_plane.proxy import ProxyApp
from data_plane.runtime import RuntimeHolder, compile_runtime
from data_plane.upstream import UpstreamClient
from gateway.credentials import CredentialLookup, InMemoryCredentials
from gateway.plugins.base import Plugin
from gateway.snapshot import Snapshot
from lockgate.embedded_server import embedded


@contextlib.asynccontextmanager
async def serve_proxy(
    snapshot: Snapshot,
    registry: Mapping[str, Plugin[Any]],
    credentials: CredentialLookup | None = None,
) -> AsyncIterator[str]:
    """The real ProxyApp on the embedded server on a free loopback port; yields its base URL.
    Key-auth looks keys up in `credentials` (an empty in-memory lookup when None)."""
    holder = RuntimeHolder()
    lookup = credentials if credentials is not None else InMemoryCredentials()
    holder.swap(compile_runtime(snapshot, registry, lookup))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    # As data_plane.main should (see the report): without it each keep-alive response waits
    # ~40 ms for the client's delayed ACK (Nagle holds the body behind the head).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    server = embedded(ProxyApp(holder, UpstreamClient()), lifespan="on")
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        for _ in range(500):
            if server.started or task.done():
                break
            await asyncio.sleep(0.01)
        assert server.started, "proxy did not start"
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)
        sock.close()


@contextlib.asynccontextmanager
async def proxy_client(
    snapshot: Snapshot,
    registry: Mapping[str, Plugin[Any]],
    credentials: CredentialLookup | None = None,
) -> AsyncIterator[httpx.AsyncClient]:
    """`serve_proxy` with an httpx client (10 s timeout) whose base URL is the proxy."""
    async with (
        serve_proxy(snapshot, registry, credentials) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        yield client


def closed_port() -> int:
    """A loopback port nothing listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
