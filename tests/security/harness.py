"""`serve`: the real ProxyApp on uvicorn on a free loopback port, with a given credential
lookup (tests/data_plane/test_proxy_retry.py's `serve_proxy` has none)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator, Mapping
from typing import Any

from data_plane.proxy import ProxyApp
from data_plane.runtime import RuntimeHolder, compile_runtime
from data_plane.upstream import UpstreamClient
from gateway.credentials import CredentialLookup
from gateway.plugins.base import Plugin
from gateway.snapshot import Snapshot
from lockgate.embedded_server import embedded


@contextlib.asynccontextmanager
async def serve(
    snapshot: Snapshot, registry: Mapping[str, Plugin[Any]], credentials: CredentialLookup
) -> AsyncIterator[str]:
    """Serve `snapshot` until the block ends; yields the proxy's base URL."""
    holder = RuntimeHolder()
    holder.swap(compile_runtime(snapshot, registry, credentials))
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
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
