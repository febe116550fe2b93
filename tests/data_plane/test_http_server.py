"""The proxy port's server (`data_plane.http_server`) seen from raw client sockets: keep-alive and
pipelining, chunked bodies and SSE both ways with backpressure, `Expect: 100-continue`, limits
(431, 413, 400), timeouts (idle, head, body), HEAD and HTTP/1.0 framing, app failures, and the
graceful drain on shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import pytest
import uvloop

from data_plane.http_server import HttpServer, Limits

Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]


class Echo:
    """Answers with the request's method, path and body; records each call."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    async def __call__(self, scope: Message, receive: Receive, send: Send) -> None:
        parts = []
        while True:
            message = await receive()
            parts.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(parts)
        self.calls.append(
            {
                "path": scope["path"],
                "query_string": scope["query_string"],
                "headers": scope["headers"],
                "body": body,
            }
        )
        out = b"%s %s %s" % (scope["method"].encode(), scope["raw_path"], body)
        await send({"type": "http.response.start", "status": 200, "headers": [(b"x-app", b"1")]})
        await send({"type": "http.response.body", "body": out})


def _socket() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    return sock


@contextlib.asynccontextmanager
async def serving(app: Any, limits: Limits | None = None) -> AsyncIterator[tuple[HttpServer, int]]:
    sock = _socket()
    server = HttpServer(app, limits)
    await server.start([sock])
    try:
        yield server, sock.getsockname()[1]
    finally:
        await server.shutdown(timeout_s=1)
        sock.close()


async def connect(port: int) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    return await asyncio.open_connection("127.0.0.1", port)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """Status, headers (lower-cased names) and body of one answer (Content-Length or chunked)."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    if status in (204, 304):
        body = b""
    elif "content-length" in headers:
        body = await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            chunk = await reader.readexactly(size + 2)
            if size == 0:
                break
            body += chunk[:-2]
    else:
        body = await reader.read()
    return status, headers, body


async def test_keep_alive_requests_on_one_connection() -> None:
    app = Echo()
    async with serving(app) as (_, port):
        reader, writer = await connect(port)
        for i in range(3):
            writer.write(
                b"POST /a?q=%d HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\nb%d" % (i, i)
            )
            status, headers, body = await read_response(reader)
            assert (status, body) == (200, b"POST /a b%d" % i)
            assert headers["content-length"] == str(len(body))
            assert headers["x-app"] == "1"
        writer.close()
    assert [c["path"] for c in app.calls] == ["/a"] * 3


async def test_pipelined_requests_are_answered_in_order() -> None:
    async with serving(Echo()) as (_, port):
        reader, writer = await connect(port)
        writer.write(
            b"GET /one HTTP/1.1\r\nHost: x\r\n\r\n"
            b"POST /two HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc"
            b"GET /three HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        bodies = [(await read_response(reader))[2] for _ in range(3)]
        writer.close()
    assert bodies == [b"GET /one ", b"POST /two abc", b"GET /three "]


async def test_chunked_request_body_reaches_the_app_while_it_is_sent() -> None:
    pieces: list[tuple[float, bytes]] = []

    async def app(scope: Message, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            pieces.append((time.monotonic(), message.get("body", b"")))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    async with serving(app) as (_, port):
        reader, writer = await connect(port)
        writer.write(b"POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        writer.write(b"5\r\nfirst\r\n")
        await writer.drain()
        await asyncio.sleep(0.3)
        sent_last = time.monotonic()
        writer.write(b"4\r\nlast\r\n0\r\n\r\n")
        status, headers, _ = await read_response(reader)
        writer.close()
    assert status == 204
    assert "content-length" not in headers
    assert b"".join(p for _, p in pieces) == b"firstlast"
    assert pieces[0][1] == b"first" and pieces[0][0] < sent_last


async def test_sse_is_streamed_chunked_as_the_app_sends_it() -> None:
    async def app(scope: Message, receive: Receive, send: Send) -> None:
        await receive()
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        for i in range(3):
            event = b"data: %d\n\n" % i
            await send({"type": "http.response.body", "body": event, "more_body": True})
            await asyncio.sleep(0.15)
        await send({"type": "http.response.body", "body": b""})

    async with serving(app) as (_, port):
        reader, writer = await connect(port)
        started = time.monotonic()
        writer.write(b"GET /sse HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await reader.readuntil(b"\r\n\r\n")
        first = await reader.readuntil(b"\n\n")
        first_at = time.monotonic() - started
        rest = await asyncio.wait_for(reader.readuntil(b"0\r\n\r\n"), 5)
        writer.close()
    assert b"Transfer-Encoding: chunked" in head
    assert first.endswith(b"data: 0\n\n")
    assert first_at < 0.12
    assert b"data: 2\n\n" in rest


async def test_slow_client_pauses_the_app() -> None:
    size = 48 << 20
    progress: list[int] = []

    async def app(scope: Message, receive: Receive, send: Send) -> None:
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        block = b"x" * (1 << 20)
        for i in range(size // len(block)):
            progress.append(i)
            await send({"type": "http.response.body", "body": block, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    async with serving(app) as (_, port):
        reader, writer = await connect(port)
        writer.write(b"GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
        await asyncio.sleep(0.5)
        sent_while_not_reading = len(progress)
        status, _, body = await read_response(reader)
        writer.close()
    assert status == 200 and len(body) == size
    assert sent_while_not_reading < 40  # the app waited instead of queueing 48 MiB


async def test_unread_request_body_stops_the_client() -> None:
    release = asyncio.Event()
    app_echo = Echo()

    async def app(scope: Message, receive: Receive, send: Send) -> None:
        await release.wait()
        await app_echo(scope, receive, send)

    size = 48 << 20
    async with serving(app, Limits(max_body=64 << 20)) as (_, port):
        sock = socket.create_connection(("127.0.0.1", port))
        sock.settimeout(0.5)
        sock.sendall(b"POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % size)
        sent = 0
        block = b"y" * (1 << 20)
        with pytest.raises(TimeoutError):
            while sent < size:
                sent += sock.send(block)
        assert sent < size  # the server stopped reading what the app did not take
        release.set()
        sock.setblocking(False)
        await asyncio.get_running_loop().sock_sendall(sock, b"y" * (size - sent))
        reader, writer = await asyncio.open_connection(sock=sock)
        status, _, body = await read_response(reader)
        writer.close()
    assert status == 200
    assert body.startswith(b"POST /up yyy")
    assert len(app_echo.calls[0]["body"]) == size


async def test_expect_100_continue_is_answered_when_the_body_is_read() -> None:
    async with serving(Echo()) as (_, port):
        reader, writer = await connect(port)
        writer.write(
            b"POST /e HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
        assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
        writer.write(b"body")
        status, _, body = await read_response(reader)
        writer.close()
    assert (status, body) == (200, b"POST /e body")


async def test_declared_body_over_the_limit_is_413_without_continue_or_app() -> None:
    app = Echo()
    async with serving(app, Limits(max_body=1000)) as (_, port):
        reader, writer = await connect(port)
        writer.write(
            b"POST /big HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n"
        )
        status, headers, body = await read_response(reader)
        assert await reader.read() == b""  # closed
        writer.close()
    assert status == 413
    assert body == b'{"message": "Request size limit exceeded"}'
    assert headers["connection"] == "close"
    assert app.calls == []


async def test_head_over_the_header_limit_is_431() -> None:
    app = Echo()
    async with serving(app, Limits(max_header_bytes=4096)) as (_, port):
        reader, writer = await connect(port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 5000 + b"\r\n\r\n")
        status, _, _ = await read_response(reader)
        writer.close()
    assert status == 431
    assert app.calls == []


async def test_too_many_headers_is_431() -> None:
    async with serving(Echo(), Limits(max_headers=10)) as (_, port):
        reader, writer = await connect(port)
        many = b"".join(b"X-H%d: v\r\n" % i for i in range(20))
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n" + many + b"\r\n")
        status, _, _ = await read_response(reader)
        writer.close()
    assert status == 431


@pytest.mark.parametrize(
    "raw",
    [
        b"GARBAGE\r\n\r\n",
        b"GET / HTTP/1.1\r\nBad Header Name: v\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: nope\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ],
)
async def test_malformed_request_is_400(raw: bytes) -> None:
    app = Echo()
    async with serving(app) as (_, port):
        reader, writer = await connect(port)
        writer.write(raw)
        status, headers, _ = await read_response(reader)
        writer.close()
    assert status == 400
    assert headers["connection"] == "close"


@pytest.mark.parametrize(
    ("target", "path", "query", "host"),
    [
        (b"http://api.example:8080/v1/chat?x=1", "/v1/chat", b"x=1", b"api.example:8080"),
        (b"http://api.example", "/", b"", b"api.example"),
        (b"http://[::1]:81/x", "/x", b"", b"[::1]:81"),
    ],
)
async def test_absolute_form_target_is_routed_by_its_authority(
    target: bytes, path: str, query: bytes, host: bytes
) -> None:
    app = Echo()
    async with serving(app) as (_, port):
        reader, writer = await connect(port)
        writer.write(b"GET " + target + b" HTTP/1.1\r\nHost: wrong.example\r\n\r\n")
        status, _, body = await read_response(reader)
        writer.close()
    assert status == 200
    assert body == b"GET " + path.encode() + b" "
    [call] = app.calls
    assert call["path"] == path
    assert call["query_string"] == query
    assert [v for n, v in call["headers"] if n == b"host"] == [host]


async def test_idle_keep_alive_connection_is_closed() -> None:
    async with serving(Echo(), Limits(keepalive_s=0.2)) as (_, port):
        reader, writer = await connect(port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await read_response(reader)
        started = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 3) == b""
        writer.close()
    assert time.monotonic() - started < 1.5


async def test_keep_alive_deadline_counts_from_the_last_answer() -> None:
    async with serving(Echo(), Limits(keepalive_s=0.5)) as (_, port):
        reader, writer = await connect(port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await read_response(reader)
        await asyncio.sleep(0.35)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # within the first deadline
        status, _, _ = await read_response(reader)
        answered = time.monotonic()
        assert await asyncio.wait_for(reader.read(), 3) == b""
        closed = time.monotonic() - answered
        writer.close()
    assert status == 200
    assert 0.35 < closed < 1.5  # the idle time restarted with the second answer


async def test_head_deadline_shorter_than_the_keep_alive_one_still_applies() -> None:
    async with serving(Echo(), Limits(keepalive_s=30, header_timeout_s=0.2)) as (_, port):
        reader, writer = await connect(port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await read_response(reader)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # a next head, never finished
        started = time.monotonic()
        status, _, _ = await read_response(reader)
        writer.close()
    assert status == 408
    assert time.monotonic() - started < 1.5


async def test_slow_head_is_408() -> None:
    async with serving(Echo(), Limits(header_timeout_s=0.2)) as (_, port):
        reader, writer = await connect(port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # never finished
        status, _, _ = await read_response(reader)
        writer.close()
    assert status == 408


async def test_stalled_body_is_408() -> None:
    async with serving(Echo(), Limits(body_timeout_s=0.2)) as (_, port):
        reader, writer = await connect(port)
        writer.write(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nhalf")
        status, _, _ = await read_response(reader)
        writer.close()
    assert status == 408


async def test_head_request_gets_length_but_no_body() -> None:
    async with serving(Echo()) as (_, port):
        reader, writer = await connect(port)
        writer.write(b"HEAD /h HTTP/1.1\r\nHost: x\r\n\r\nGET /g HTTP/1.1\r\nHost: x\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 2)
        status, _, body = await read_response(reader)
        writer.close()
    assert b"Content-Length: 8" in head  # "HEAD /h " is what a GET would have carried
    assert (status, body) == (200, b"GET /g ")


async def test_http_1_0_streamed_answer_ends_with_the_connection() -> None:
    async def app(scope: Message, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"part1 ", "more_body": True})
        await send({"type": "http.response.body", "body": b"part2"})

    async with serving(app) as (_, port):
        reader, writer = await connect(port)
        writer.write(b"GET / HTTP/1.0\r\n\r\n")
        status, headers, body = await read_response(reader)
        writer.close()
    assert (status, body) == (200, b"part1 part2")
    assert "transfer-encoding" not in headers
    assert headers["connection"] == "close"


async def test_app_error_before_answering_is_500() -> None:
    async def app(scope: Message, receive: Receive, send: Send) -> None:
        raise RuntimeError("boom")

    async with serving(app) as (_, port):
        reader, writer = await connect(port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        status, _, _ = await read_response(reader)
        writer.close()
    assert status == 500


async def test_client_leaving_is_seen_by_the_app() -> None:
    seen: list[str] = []

    async def app(scope: Message, receive: Receive, send: Send) -> None:
        seen.append((await receive())["type"])  # the (empty) body
        seen.append((await receive())["type"])  # then only the disconnect

    async with serving(app) as (_, port):
        _, writer = await connect(port)
        writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        await writer.drain()
        await asyncio.sleep(0.1)
        writer.close()
        for _ in range(100):
            if len(seen) == 2:
                break
            await asyncio.sleep(0.02)
    assert seen == ["http.request", "http.disconnect"]


async def test_shutdown_drains_requests_in_flight_and_closes_idle_connections() -> None:
    async def app(scope: Message, receive: Receive, send: Send) -> None:
        await receive()
        if scope["path"] == "/slow":
            await asyncio.sleep(0.3)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"done"})

    sock = _socket()
    port = sock.getsockname()[1]
    server = HttpServer(app)
    await server.start([sock])
    idle_reader, idle_writer = await connect(port)
    idle_writer.write(b"GET /fast HTTP/1.1\r\nHost: x\r\n\r\n")
    await read_response(idle_reader)
    busy_reader, busy_writer = await connect(port)
    busy_writer.write(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.sleep(0.05)
    started = time.monotonic()
    shutdown = asyncio.create_task(server.shutdown(timeout_s=5))
    assert await asyncio.wait_for(idle_reader.read(), 1) == b""  # idle: closed at once
    status, headers, body = await read_response(busy_reader)
    await asyncio.wait_for(shutdown, 5)
    sock.close()
    assert (status, body) == (200, b"done")
    assert headers["connection"] == "close"
    assert time.monotonic() - started < 2
    with pytest.raises(OSError):
        await connect(port)
    idle_writer.close()
    busy_writer.close()


async def test_shutdown_gives_up_on_requests_past_the_deadline() -> None:
    async def app(scope: Message, receive: Receive, send: Send) -> None:
        await asyncio.sleep(30)

    sock = _socket()
    server = HttpServer(app)
    await server.start([sock])
    reader, writer = await connect(sock.getsockname()[1])
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    await asyncio.sleep(0.05)
    started = time.monotonic()
    await server.shutdown(timeout_s=0.2)
    assert await asyncio.wait_for(reader.read(), 1) == b""
    assert time.monotonic() - started < 1.5
    sock.close()
    writer.close()


def test_works_on_uvloop() -> None:
    async def scenario() -> list[bytes]:
        async with serving(Echo()) as (_, port):
            reader, writer = await connect(port)
            out = []
            for i in range(2):
                writer.write(b"POST /u HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\n%d" % i)
                out.append((await read_response(reader))[2])
            writer.close()
            return out

    assert uvloop.run(scenario()) == [b"POST /u 0", b"POST /u 1"]
