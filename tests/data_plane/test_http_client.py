"""The pooled upstream client (`data_plane.http_client`) against scripted raw-socket servers:
keep-alive reuse, an idle connection the upstream closed (retried once, fresh), chunked and
streamed bodies with backpressure, interim 1xx answers, timeouts per phase, TLS with
verification, malformed answers, answers framed by the end of the connection, HEAD."""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import uvloop

from data_plane.http_client import (
    ConnectError,
    ConnectionPool,
    ConnectTimeout,
    Disconnected,
    InvalidResponse,
    ReadTimeout,
    WriteTimeout,
)
from tests.data_plane.tls_certs import TestCA

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"


class Script:
    """A loopback server running `handler` per connection; counts connections."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


@contextlib.asynccontextmanager
async def serving(handler: Handler, ssl_ctx: ssl.SSLContext | None = None) -> AsyncIterator[Script]:
    script = Script(handler)
    server = await asyncio.start_server(script._serve, "127.0.0.1", 0, ssl=ssl_ctx)
    script.port = server.sockets[0].getsockname()[1]
    try:
        yield script
    finally:
        server.close()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 2)


async def read_request(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    """Head and body (by Content-Length) of one request."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    return head, await reader.readexactly(length)


async def get(
    pool: ConnectionPool,
    port: int,
    *,
    method: str = "GET",
    body: bytes = b"",
    scheme: str = "http",
    host: str = "127.0.0.1",
    connect_s: float = 2,
    write_s: float = 2,
    read_s: float = 2,
) -> tuple[int, bytes]:
    response = await pool.request(
        method,
        scheme,
        host,
        port,
        "/x",
        [("Host", f"{host}:{port}")],
        body,
        connect_s=connect_s,
        write_s=write_s,
        read_s=read_s,
    )
    data = await response.read()
    response.release()
    return response.status, data


async def test_keep_alive_connection_is_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            _, body = await read_request(reader)
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body))

    async with serving(handler) as server:
        pool = ConnectionPool()
        results = [await get(pool, server.port, method="POST", body=b"n%d" % i) for i in range(3)]
        pool.close()
    assert results == [(200, b"n0"), (200, b"n1"), (200, b"n2")]
    assert server.connections == 1


async def test_request_reaching_an_idle_connection_the_upstream_closed_is_retried_fresh() -> None:
    # The first connection answers once, then closes when the next request arrives without
    # answering it (the race of an upstream's keep-alive timeout): nothing came back, so the
    # client tries once more on a new connection.
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK)
        if server.connections == 1:
            await reader.readuntil(b"\r\n\r\n")
            return  # close without an answer
        while True:
            await read_request(reader)
            writer.write(OK)

    async with serving(handler) as server:
        pool = ConnectionPool()
        assert await get(pool, server.port) == (200, b"ok")
        assert await get(pool, server.port, method="POST", body=b"data") == (200, b"ok")
        pool.close()
    assert server.connections == 2


async def test_fresh_connection_closed_without_answer_is_not_retried() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)

    async with serving(handler) as server:
        pool = ConnectionPool()
        with pytest.raises(Disconnected) as failure:
            await get(pool, server.port)
        pool.close()
    assert failure.value.sent is True
    assert server.connections == 1


async def test_connection_closed_by_upstream_while_idle_is_not_reused() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK)
        await writer.drain()

    async with serving(handler) as server:
        pool = ConnectionPool()
        assert await get(pool, server.port) == (200, b"ok")
        await asyncio.sleep(0.1)  # the close reaches the client while the connection idles
        assert await get(pool, server.port) == (200, b"ok")
        pool.close()
    assert server.connections == 2


async def test_chunked_body_is_streamed_as_it_arrives() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n")
        writer.write(b"Transfer-Encoding: chunked\r\n\r\n")
        for i in range(3):
            event = b"data: %d\n\n" % i
            writer.write(b"%x\r\n%b\r\n" % (len(event), event))
            await writer.drain()
            await asyncio.sleep(0.15)
        writer.write(b"0\r\n\r\n")
        await read_request(reader)
        writer.write(OK)

    async with serving(handler) as server:
        pool = ConnectionPool()
        started = time.monotonic()
        response = await pool.request(
            "GET",
            "http",
            "127.0.0.1",
            server.port,
            "/s",
            [("Host", "x")],
            b"",
            connect_s=2,
            write_s=2,
            read_s=2,
        )
        arrivals = []
        chunks = []
        async for chunk in response.chunks():
            arrivals.append(time.monotonic() - started)
            chunks.append(chunk)
        response.release()
        # The connection went back to the pool: the next request reuses it.
        assert await get(pool, server.port) == (200, b"ok")
        pool.close()
    assert b"".join(chunks) == b"data: 0\n\ndata: 1\n\ndata: 2\n\n"
    assert arrivals[0] < 0.12  # the first event did not wait for the last
    assert arrivals[-1] > 0.25
    assert server.connections == 1


async def test_slow_reader_pauses_the_upstream() -> None:
    size = 48 << 20
    backlog: list[int] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % size)
        writer.write(b"x" * size)
        await asyncio.sleep(0.5)
        # Still queued here: the client stopped reading instead of buffering it all.
        backlog.append(writer.transport.get_write_buffer_size())
        await writer.drain()

    async with serving(handler) as server:
        pool = ConnectionPool()
        response = await pool.request(
            "GET",
            "http",
            "127.0.0.1",
            server.port,
            "/big",
            [("Host", "x")],
            b"",
            connect_s=2,
            write_s=2,
            read_s=5,
        )
        await asyncio.sleep(0.7)
        received = 0
        async for chunk in response.chunks():
            received += len(chunk)
        response.release()
        pool.close()
    assert received == size
    assert backlog[0] > 8 << 20


async def test_interim_100_continue_is_skipped() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        writer.write(b"HTTP/1.1 103 Early Hints\r\nLink: </a>; rel=preload\r\n\r\n")
        writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\n\r\ndone")

    async with serving(handler) as server:
        pool = ConnectionPool()
        assert await get(pool, server.port, method="POST", body=b"x") == (201, b"done")
        pool.close()


async def test_read_timeout_waiting_for_the_head() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        await asyncio.sleep(3)

    async with serving(handler) as server:
        pool = ConnectionPool()
        started = time.monotonic()
        with pytest.raises(ReadTimeout):
            await get(pool, server.port, read_s=0.2)
        pool.close()
    assert 0.15 < time.monotonic() - started < 1.5


async def test_shorter_read_timeout_on_a_reused_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(OK)
        await read_request(reader)
        await asyncio.sleep(5)  # the second answer never comes

    async with serving(handler) as server:
        pool = ConnectionPool()
        assert await get(pool, server.port, read_s=30) == (200, b"ok")
        started = time.monotonic()
        with pytest.raises(ReadTimeout):
            await get(pool, server.port, read_s=0.2)
        pool.close()
    assert server.connections == 1
    assert 0.15 < time.monotonic() - started < 1.5


async def test_read_timeout_between_body_chunks() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhalf")
        await asyncio.sleep(3)

    async with serving(handler) as server:
        pool = ConnectionPool()
        with pytest.raises(ReadTimeout):
            await get(pool, server.port, read_s=0.2)
        pool.close()


async def test_write_timeout_when_the_upstream_does_not_read() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3)

    async with serving(handler) as server:
        pool = ConnectionPool()
        with pytest.raises(WriteTimeout):
            await get(pool, server.port, method="POST", body=b"x" * (64 << 20), write_s=0.3)
        pool.close()


async def test_refused_connection_is_an_unsent_connect_error() -> None:
    async with serving(lambda r, w: asyncio.sleep(0)) as server:
        port = server.port
    pool = ConnectionPool()
    with pytest.raises(ConnectError) as failure:
        await get(pool, port)
    assert failure.value.sent is False


async def test_connect_timeout_covers_a_stalled_tls_handshake() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3)  # accepts TCP, never answers the ClientHello

    async with serving(handler) as server:
        pool = ConnectionPool()
        with pytest.raises(ConnectTimeout) as failure:
            await get(pool, server.port, scheme="https", connect_s=0.3)
        pool.close()
    assert failure.value.sent is False


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA()


async def _tls_echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while True:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecure")


async def test_https_with_a_trusted_certificate(ca: TestCA) -> None:
    async with serving(_tls_echo, ca.server_context("localhost")) as server:
        pool = ConnectionPool(ssl_context=ca.client_context())
        assert await get(pool, server.port, scheme="https", host="localhost") == (200, b"secure")
        assert await get(pool, server.port, scheme="https", host="localhost") == (200, b"secure")
        pool.close()
    assert server.connections == 1


async def test_https_refuses_an_untrusted_certificate(ca: TestCA) -> None:
    async with serving(_tls_echo, ca.server_context("localhost")) as server:
        pool = ConnectionPool()  # the system's trust store does not know the test CA
        with pytest.raises(ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await get(pool, server.port, scheme="https", host="localhost")


async def test_https_refuses_a_certificate_for_another_host(ca: TestCA) -> None:
    async with serving(_tls_echo, ca.server_context("other.example")) as server:
        pool = ConnectionPool(ssl_context=ca.client_context())
        with pytest.raises(ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
            await get(pool, server.port, scheme="https", host="localhost")


async def test_malformed_answer_is_invalid() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 abc nonsense\r\n\r\n")

    async with serving(handler) as server:
        pool = ConnectionPool()
        with pytest.raises(InvalidResponse):
            await get(pool, server.port)


async def test_answer_ended_by_closing_the_connection() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nuntil the end")
        await writer.drain()

    async with serving(handler) as server:
        pool = ConnectionPool()
        assert await get(pool, server.port) == (200, b"until the end")
        assert await get(pool, server.port) == (200, b"until the end")
        pool.close()
    assert server.connections == 2


async def test_head_answer_has_no_body_despite_content_length() -> None:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        await asyncio.sleep(3)

    async with serving(handler) as server:
        pool = ConnectionPool()
        assert await asyncio.wait_for(get(pool, server.port, method="HEAD"), 1) == (200, b"")
        pool.close()


def test_works_on_uvloop() -> None:
    # The data plane runs on uvloop, whose transports are not asyncio.Transport subclasses.
    async def scenario() -> list[tuple[int, bytes]]:
        async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                await read_request(reader)
                writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                writer.write(b"2\r\nok\r\n0\r\n\r\n")

        async with serving(handler) as server:
            pool = ConnectionPool()
            out = [await get(pool, server.port) for _ in range(2)]
            pool.close()
            assert server.connections == 1
            return out

    assert uvloop.run(scenario()) == [(200, b"ok"), (200, b"ok")]
