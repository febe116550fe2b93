"""One proxy process built from a chosen server and upstream client, to measure the choices
side by side (`bench/run.py` section "Choices"):

    python -m proxybench.variant --server uvicorn|own --client aiohttp|httptools \\
        --port 8000 --upstream-port 9000

`own` is `data_plane.http_server` (uvloop + httptools), `uvicorn` is uvicorn with its httptools
parser on uvloop; `httptools` is `data_plane.upstream.UpstreamClient`, `aiohttp` an adapter with
the same interface (what the data plane used before). Routes as in `inprocess.runtime`."""

from __future__ import annotations

import argparse
import asyncio
import gc
import socket
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import uvloop
from yarl import URL

from data_plane.http_server import HttpServer
from data_plane.proxy import ProxyApp
from data_plane.upstream import Timeouts, UpstreamClient, UpstreamError
from lockgate.embedded_server import embedded
from proxybench.inprocess import runtime


class _AiohttpResponse:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers = list(response.headers.items())

    def complete_body(self) -> bytes | None:
        return None  # read() or chunks() then, as aiohttp has it

    async def read(self) -> bytes:
        return await self._response.read()

    async def chunks(self) -> AsyncIterator[bytes]:
        async for chunk in self._response.content.iter_any():
            yield chunk

    def release(self) -> None:
        self._response.release()

    def close(self) -> None:
        self._response.close()


class AiohttpUpstream:
    """`UpstreamClient`'s interface on aiohttp (as the data plane had it before)."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def start(self) -> None:
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0, keepalive_timeout=60),
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),
            skip_auto_headers=("User-Agent", "Accept-Encoding", "Accept", "Content-Type"),
        )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def send(
        self,
        method: str,
        scheme: str,
        host: str,
        port: int,
        target: str,
        headers: list[tuple[str, str]],
        body: bytes,
        timeouts: Timeouts,
        retries: int,
    ) -> _AiohttpResponse:
        assert self._session is not None
        try:
            response = await self._session.request(
                method,
                URL(f"{scheme}://{host}:{port}{target}", encoded=True),
                headers=headers,
                data=body or None,
                timeout=aiohttp.ClientTimeout(total=None, sock_read=timeouts.read_s),
                allow_redirects=False,
            )
        except aiohttp.ClientError as exc:
            raise UpstreamError(str(exc), kind="error", sent=True) from exc
        return _AiohttpResponse(response)


async def _main(server: str, client: str, port: int, upstream_port: int) -> None:
    upstream: Any = AiohttpUpstream() if client == "aiohttp" else UpstreamClient()
    app = ProxyApp(runtime(upstream_port), upstream)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(2048)
    sock.setblocking(False)
    gc.collect()
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)
    if server == "own":
        await app.startup()
        own = HttpServer(app)
        await own.start([sock])
        await asyncio.Event().wait()
    else:
        await embedded(app, lifespan="on", server_header=False, date_header=False).serve(
            sockets=[sock]
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--server", choices=("uvicorn", "own"), required=True)
    parser.add_argument("--client", choices=("aiohttp", "httptools"), required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream-port", type=int, required=True)
    args = parser.parse_args()
    uvloop.run(_main(args.server, args.client, args.port, args.upstream_port))
