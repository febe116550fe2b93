"""Hostile input to the proxy port, over real sockets: the data plane's own server
(`data_plane.http_server`) serving the real `ProxyApp`, with an ai-proxy-advanced route and a
plain route both in front of the fake OpenAI.

Whatever a client sends: oversized heads get 431, bodies over the limit 413, malformed or
ambiguous requests (garbage, bad versions, NUL, bare LF, request smuggling with conflicting
Content-Length / Transfer-Encoding, bad chunk sizes, bad request targets) 400; each of those
closes the connection, nothing reaches the upstream, and the server keeps serving others. Slow
clients (heads trickled, bodies stalled) get 408 and idle connections are closed, the server's
connections and the process's file descriptors going back to where they were. Bodies an LLM
route cannot use get Kong's 400 `{"error":{"message":...}}` without an upstream call.

Inputs tried: 6 oversized heads, 7 oversized bodies, 95 malformed requests (55 named, 40 seeded
random), 30 slowloris clients, 20 stalled bodies, 80 idle connections, 23 unusable LLM bodies.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from data_plane.http_server import HttpServer, Limits
from data_plane.proxy import ProxyApp
from data_plane.runtime import RuntimeHolder, compile_runtime
from data_plane.upstream import UpstreamClient
from gateway.credentials import InMemoryCredentials
from gateway.entities import Plugin as PluginEntity
from gateway.entities import Ref, Route, Service
from gateway.plugins import registry
from gateway.snapshot import Snapshot
from tests.data_plane.test_http_server import read_response
from tests.fakes.openai_server import FakeOpenAI

PROVIDER_KEY = "sk-provider"
MODEL = "gpt-4o"
CHAT = {"model": MODEL, "messages": [{"role": "user", "content": "hi"}]}
MAX_BODY = 4096


def _snapshot(fake_url: str, fake_port: int) -> Snapshot:
    service = Service(
        host="127.0.0.1", port=fake_port, path="/v1/chat/completions", retries=0, name="llm"
    )
    llm = Route(name="llm", paths=["/llm"], service=Ref(id=service.id))
    plain = Route(name="plain", paths=["/plain"], service=Ref(id=service.id))
    ai = {
        "targets": [
            {
                "route_type": "llm/v1/chat",
                "auth": {"header_name": "Authorization", "header_value": f"Bearer {PROVIDER_KEY}"},
                "model": {
                    "provider": "openai",
                    "name": MODEL,
                    "options": {"upstream_url": f"{fake_url}/v1/chat/completions"},
                },
            }
        ]
    }
    plugins = (PluginEntity(name="ai-proxy-advanced", route=Ref(id=llm.id), config=ai),)
    return Snapshot.create(1, (service,), (llm, plain), plugins)


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=PROVIDER_KEY) as server:
        yield server


@contextlib.asynccontextmanager
async def gateway(
    fake: FakeOpenAI, limits: Limits | None = None, max_body: int = MAX_BODY
) -> AsyncIterator[tuple[HttpServer, int]]:
    port = int(fake.url.rsplit(":", 1)[1])
    holder = RuntimeHolder()
    holder.swap(compile_runtime(_snapshot(fake.url, port), registry(), InMemoryCredentials()))
    app = ProxyApp(holder, UpstreamClient(), max_body=max_body)
    await app.startup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sock.setblocking(False)
    server = HttpServer(app, limits or Limits(max_body=MAX_BODY))
    await server.start([sock])
    try:
        yield server, sock.getsockname()[1]
    finally:
        await server.shutdown(timeout_s=2)
        await app.shutdown()
        sock.close()


def _fds() -> int:
    return len(os.listdir("/proc/self/fd"))


async def _settles(condition: Any, seconds: float = 5.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        await asyncio.sleep(0.02)
    return bool(condition())


async def _exchange(port: int, pieces: list[bytes], pause: float = 0.0) -> tuple[int, bytes, bool]:
    """Send `pieces` (pausing between them), read one answer; (status, body, closed after)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for piece in pieces:
            if writer.is_closing() or reader.at_eof():
                break
            writer.write(piece)
            with contextlib.suppress(ConnectionError):
                await writer.drain()
            if pause:
                await asyncio.sleep(pause)
        try:
            status, _, body = await read_response(reader)
        except (TimeoutError, asyncio.IncompleteReadError, ConnectionError):
            return 0, b"", reader.at_eof()  # no answer
        try:
            closed = await asyncio.wait_for(reader.read(), 3) == b""
        except TimeoutError:
            closed = False
        except ConnectionError:
            closed = True
        return status, body, closed
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def _serves_a_good_request(port: int) -> int:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
        response = await client.post("/llm", json=CHAT)
    assert response.json()["choices"][0]["message"]["content"] == "Hello! You said: hi"
    return response.status_code


def _message(body: bytes) -> str:
    return str(json.loads(body)["message"])


# --- 431: heads over the limit ---

HEAD = b"GET /plain HTTP/1.1\r\nHost: x\r\n"
OVERSIZED_HEADS: dict[str, list[bytes]] = {
    "long request line": [b"GET /plain/" + b"a" * 40_000 + b" HTTP/1.1\r\nHost: x\r\n\r\n"],
    "one huge header": [HEAD + b"X-Big: " + b"v" * 40_000 + b"\r\n\r\n"],
    "huge header name": [HEAD + b"X-" + b"n" * 40_000 + b": v\r\n\r\n"],
    "too many headers": [HEAD + b"".join(b"X-H%d: v\r\n" % i for i in range(150)) + b"\r\n"],
    "many mid-size headers": [
        HEAD + b"".join(b"X-H%d: %s\r\n" % (i, b"v" * 900) for i in range(40)) + b"\r\n"
    ],
    "huge head in small writes": [HEAD] + [b"X-Big: " + b"v" * 1000 + b"\r\n"] * 40 + [b"\r\n"],
}


async def test_heads_over_the_limit_are_431_and_the_connection_closed(fake: FakeOpenAI) -> None:
    async with gateway(fake) as (server, port):
        results = {}
        for name, pieces in OVERSIZED_HEADS.items():
            results[name] = await _exchange(port, pieces)
        assert await _serves_a_good_request(port) == 200
        assert await _settles(lambda: not server.connections)
    for name, (status, body, closed) in results.items():
        assert (status, closed) == (431, True), name
        assert _message(body) == "Request Header Fields Too Large", name
    assert len(fake.requests) == 1  # the good request only


# --- 413: bodies over the limit ---


def _chunked(*chunks: bytes) -> bytes:
    return b"".join(b"%x\r\n%s\r\n" % (len(c), c) for c in chunks) + b"0\r\n\r\n"


POST = b"POST /llm HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
OVERSIZED_BODIES: dict[str, list[bytes]] = {
    "declared length over the limit": [POST + b"Content-Length: 5000\r\n\r\n" + b"x" * 5000],
    "declared length, body still coming after the answer": [
        POST + b"Content-Length: 40000\r\n\r\n",
        *[b"x" * 4000] * 10,
    ],
    "declared length, no body sent": [POST + b"Content-Length: 1000000000\r\n\r\n"],
    "declared length with Expect: 100-continue": [
        POST + b"Content-Length: 5000\r\nExpect: 100-continue\r\n\r\n"
    ],
    "chunked, many chunks": [
        POST + b"Transfer-Encoding: chunked\r\n\r\n",
        *[b"2bc\r\n" + b"y" * 700 + b"\r\n"] * 8,
    ],
    "chunked, one big chunk": [
        POST + b"Transfer-Encoding: chunked\r\n\r\n" + _chunked(b"z" * 9000)
    ],
    "chunked, big chunk declared, trickled": [
        POST + b"Transfer-Encoding: chunked\r\n\r\n" + b"10000\r\n",
        *[b"w" * 1024] * 8,
    ],
}

RECEIVED_WHOLE = {"chunked, one big chunk"}


async def test_bodies_over_the_limit_are_413_and_never_reach_the_upstream(
    fake: FakeOpenAI,
) -> None:
    async with gateway(fake) as (server, port):
        results = {}
        for name, pieces in OVERSIZED_BODIES.items():
            results[name] = await _exchange(port, pieces, pause=0.005)
        assert await _settles(lambda: not server.connections)
    for name, (status, body, closed) in results.items():
        # a body received whole before the answer leaves the connection in step: it may stay
        assert (status, closed or name in RECEIVED_WHOLE) == (413, True), name
        assert _message(body) == "Request size limit exceeded", name
    assert fake.requests == []


# --- 400: malformed, ambiguous and smuggling requests ---

MALFORMED: dict[str, bytes] = {
    "garbage": b"GARBAGE\r\n\r\n",
    "binary garbage": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n",  # a TLS hello
    "lower-case method": b"get /plain HTTP/1.1\r\nHost: x\r\n\r\n",
    "unknown method": b"FOO /plain HTTP/1.1\r\nHost: x\r\n\r\n",
    "bad protocol name": b"GET /plain HTTX/1.1\r\nHost: x\r\n\r\n",
    "HTTP/1.2": b"GET /plain HTTP/1.2\r\nHost: x\r\n\r\n",
    "HTTP/2.0 in an HTTP/1 request line": b"GET /plain HTTP/2.0\r\nHost: x\r\n\r\n",
    "HTTP/0.9 with headers": b"GET /plain HTTP/0.9\r\nHost: x\r\n\r\n",
    "HTTP/9.9": b"GET /plain HTTP/9.9\r\nHost: x\r\n\r\n",
    "NUL in the path": b"GET /pl\x00ain HTTP/1.1\r\nHost: x\r\n\r\n",
    "NUL in a header value": b"GET /plain HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n",
    "NUL in a header name": b"GET /plain HTTP/1.1\r\nHost: x\r\nX-\x00A: a\r\n\r\n",
    "bare CR in a header value": b"GET /plain HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n",
    "DEL in a header value": b"GET /plain HTTP/1.1\r\nHost: x\r\nX-A: \x7f\r\n\r\n",
    "bare LF line ends": b"GET /plain HTTP/1.1\nHost: x\n\n",
    "bare LF after a header": b"GET /plain HTTP/1.1\r\nHost: x\n\r\n",
    "bare LF ending the head": b"GET /plain HTTP/1.1\r\nHost: x\r\n\n",
    "space before the colon": b"GET /plain HTTP/1.1\r\nHost : x\r\n\r\n",
    "obsolete line folding": b"GET /plain HTTP/1.1\r\nHost: x\r\nX-A: a\r\n folded\r\n\r\n",
    "space inside the target": b"GET /pl ain HTTP/1.1\r\nHost: x\r\n\r\n",
    "invalid UTF-8 in the target": b"GET /\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n",
    "non-token header name": b"GET /plain HTTP/1.1\r\nHost: x\r\nX-\xff: 1\r\n\r\n",
    "HTTP/1.1 without Host": b"GET /plain HTTP/1.1\r\n\r\n",
    "two Host headers": b"GET /plain HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
    "CONNECT": b"CONNECT 127.0.0.1:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n",
    "relative target": b"GET plain HTTP/1.1\r\nHost: x\r\n\r\n",
    "query-only target": b"GET ?a=1 HTTP/1.1\r\nHost: x\r\n\r\n",
    "asterisk target on GET": b"GET * HTTP/1.1\r\nHost: x\r\n\r\n",
    "absolute target, bad IPv6": b"GET http://[::1/plain HTTP/1.1\r\nHost: x\r\n\r\n",
    "absolute target, no host": b"GET http:///plain HTTP/1.1\r\nHost: x\r\n\r\n",
    "absolute target, bad port": b"GET http://x:99999/plain HTTP/1.1\r\nHost: x\r\n\r\n",
    "scheme-relative target": b"GET ://x/plain HTTP/1.1\r\nHost: x\r\n\r\n",
    # framing: Content-Length
    "Content-Length not a number": POST + b"Content-Length: nope\r\n\r\n",
    "negative Content-Length": POST + b"Content-Length: -1\r\n\r\n",
    "Content-Length with a sign": POST + b"Content-Length: +3\r\n\r\nabc",
    "hex Content-Length": POST + b"Content-Length: 0x3\r\n\r\nabc",
    "Content-Length with inner space": POST + b"Content-Length: 3 3\r\n\r\nabc",
    "Content-Length list": POST + b"Content-Length: 3, 3\r\n\r\nabc",
    "Content-Length overflowing 64 bits": POST + b"Content-Length: 99999999999999999999999\r\n\r\n",
    "two different Content-Lengths": POST + b"Content-Length: 3\r\nContent-Length: 40\r\n\r\nabc",
    "two equal Content-Lengths": POST + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    # framing: Transfer-Encoding, and smuggling with both
    "CL.TE smuggling": POST
    + b"Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"
    + b"GET /plain HTTP/1.1\r\nHost: x\r\n\r\n",
    "TE.CL smuggling": POST
    + b"Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n",
    "TE with a space before the colon": POST
    + b"Transfer-Encoding : chunked\r\nContent-Length: 3\r\n\r\n0\r\n\r\n",
    "TE not ending in chunked": POST
    + b"Transfer-Encoding: chunked, identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "TE identity": POST + b"Transfer-Encoding: identity\r\n\r\nabc",
    "TE unknown coding": POST + b"Transfer-Encoding: xchunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "two TE headers, chunked first": POST
    + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    # chunk framing
    "chunk size not hex": POST + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n",
    "negative chunk size": POST + b"Transfer-Encoding: chunked\r\n\r\n-3\r\nabc\r\n0\r\n\r\n",
    "0x chunk size": POST + b"Transfer-Encoding: chunked\r\n\r\n0x3\r\nabc\r\n0\r\n\r\n",
    "chunk size overflowing 64 bits": POST
    + b"Transfer-Encoding: chunked\r\n\r\nfffffffffffffffffffff\r\nabc\r\n0\r\n\r\n",
    "space after the chunk size": POST
    + b"Transfer-Encoding: chunked\r\n\r\n3 \r\nabc\r\n0\r\n\r\n",
    "chunk longer than its size": POST
    + b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n0\r\n\r\n",
    "bare LF in chunk framing": POST + b"Transfer-Encoding: chunked\r\n\r\n3\nabc\n0\n\n",
}
RANDOM_GARBAGE = 40


def _random_garbage() -> dict[str, bytes]:
    rng = random.Random(20261127)
    out = {}
    for i in range(RANDOM_GARBAGE):
        size = rng.randint(1, 200)
        out[f"random bytes #{i}"] = bytes(rng.randrange(256) for _ in range(size)) + b"\r\n\r\n"
    return out


async def test_malformed_requests_are_400_closed_and_the_server_keeps_serving(
    fake: FakeOpenAI,
) -> None:
    cases = {**MALFORMED, **_random_garbage()}
    async with gateway(fake) as (server, port):
        baseline = _fds()
        results = {}
        for name, raw in cases.items():
            results[name] = await _exchange(port, [raw])
        assert await _settles(lambda: not server.connections and _fds() == baseline)
        assert fake.requests == []  # nothing malformed (or smuggled) reached the upstream
        assert await _serves_a_good_request(port) == 200
    wrong = {
        name: (status, closed)
        for name, (status, body, closed) in results.items()
        if (status, closed) != (400, True) or _message(body) != "Bad request"
    }
    assert wrong == {}
    assert len(fake.requests) == 1


# --- slow clients ---


async def _trickle(port: int, data: bytes, every: float, limit: float) -> tuple[int | None, float]:
    """Send `data` one byte at a time until the server answers or closes; (status, seconds)."""
    started = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        for byte in data:
            if reader.at_eof() or time.monotonic() - started > limit:
                break
            writer.write(bytes([byte]))
            try:
                answer = await asyncio.wait_for(reader.read(65536), every)
            except TimeoutError:
                continue
            except ConnectionError:
                return None, time.monotonic() - started
            if not answer:
                return None, time.monotonic() - started
            rest = await asyncio.wait_for(reader.read(), 3)
            status = int((answer + rest).split(b" ", 2)[1])
            return status, time.monotonic() - started
        return None, time.monotonic() - started
    finally:
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


async def test_slowloris_heads_get_408_after_the_head_timeout_and_free_everything(
    fake: FakeOpenAI,
) -> None:
    limits = Limits(header_timeout_s=0.5, keepalive_s=0.5, max_body=MAX_BODY)
    head = b"GET /plain HTTP/1.1\r\nHost: x\r\n" + b"X-Slow: " + b"s" * 200 + b"\r\n\r\n"
    async with gateway(fake, limits) as (server, port):
        baseline = _fds()
        clients = 30
        results = await asyncio.gather(
            *(_trickle(port, head, every=0.1, limit=10) for _ in range(clients))
        )
        assert await _settles(lambda: not server.connections and _fds() == baseline)
        assert await _serves_a_good_request(port) == 200
    # the head timer starts at the first byte and is not extended by more bytes
    assert [status for status, _ in results] == [408] * clients
    assert max(seconds for _, seconds in results) < 3
    assert len(fake.requests) == 1


async def test_stalled_bodies_get_408_and_never_reach_the_upstream(fake: FakeOpenAI) -> None:
    limits = Limits(body_timeout_s=0.5, max_body=MAX_BODY)
    head = POST + b"Content-Length: 100\r\n\r\n" + b'{"messages":'
    chunked = POST + b"Transfer-Encoding: chunked\r\n\r\n" + b"40\r\n" + b"{" * 10
    async with gateway(fake, limits) as (server, port):
        baseline = _fds()
        clients = 20
        started = time.monotonic()
        results = await asyncio.gather(
            *(_exchange(port, [head if i % 2 else chunked]) for i in range(clients))
        )
        elapsed = time.monotonic() - started
        assert await _settles(lambda: not server.connections and _fds() == baseline)
    assert [(status, closed) for status, _, closed in results] == [(408, True)] * clients
    assert {_message(body) for _, body, _ in results} == {"Request timeout"}
    assert elapsed < 4
    assert fake.requests == []


async def test_idle_connections_are_freed_by_the_keepalive_timeout(fake: FakeOpenAI) -> None:
    limits = Limits(keepalive_s=0.5, max_body=MAX_BODY)
    async with gateway(fake, limits) as (server, port):
        baseline = _fds()
        silent = [await asyncio.open_connection("127.0.0.1", port) for _ in range(40)]
        used = []
        for _ in range(40):
            # Each sends its request as soon as it is open: a connection silent for
            # `keepalive_s` before its first request is closed too (the silent ones), and 40
            # round trips can take longer than that on a busy machine.
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.write(b"GET /nowhere HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, _ = await read_response(reader)
            assert status == 404  # kept alive, then idle
            used.append((reader, writer))
        ends = await asyncio.gather(
            *(asyncio.wait_for(reader.read(), 5) for reader, _ in silent + used)
        )
        assert ends == [b""] * 80  # the server hung up on every one
        for _, writer in silent + used:
            writer.close()
        assert await _settles(lambda: not server.connections and _fds() == baseline)


# --- ai-proxy-advanced: bodies an LLM route cannot use ---

INVALID_PROMPTS = "request body doesn't contain valid prompts"
JSON_TYPE = "application/json"
BAD_LLM_BODIES: list[tuple[str, str | None, bytes, str]] = [
    # (case, content type, body, Kong's message)
    ("truncated JSON", JSON_TYPE, b'{"messages": [', INVALID_PROMPTS),
    ("not JSON", JSON_TYPE, b"hello", INVALID_PROMPTS),
    ("empty body", JSON_TYPE, b"", INVALID_PROMPTS),
    (
        "invalid UTF-8",
        JSON_TYPE,
        b'{"messages":[{"role":"user","content":"\xff"}]}',
        INVALID_PROMPTS,
    ),
    ("JSON array", JSON_TYPE, b"[]", INVALID_PROMPTS),
    ("JSON string", JSON_TYPE, b'"hi"', INVALID_PROMPTS),
    ("JSON null", JSON_TYPE, b"null", INVALID_PROMPTS),
    ("JSON number", JSON_TYPE, b"42", INVALID_PROMPTS),
    ("empty object", JSON_TYPE, b"{}", INVALID_PROMPTS),
    ("messages a string", JSON_TYPE, b'{"messages": "hi"}', INVALID_PROMPTS),
    ("messages empty", JSON_TYPE, b'{"messages": []}', INVALID_PROMPTS),
    ("messages an object", JSON_TYPE, b'{"messages": {"role": "user"}}', INVALID_PROMPTS),
    ("messages null", JSON_TYPE, b'{"messages": null}', INVALID_PROMPTS),
    ("prompt a number", JSON_TYPE, b'{"prompt": 5}', INVALID_PROMPTS),
    ("input empty", JSON_TYPE, b'{"input": []}', INVALID_PROMPTS),
    ("valid chat as text/plain", "text/plain", json.dumps(CHAT).encode(), INVALID_PROMPTS),
    ("valid chat as form", "application/x-www-form-urlencoded", b"messages=hi", INVALID_PROMPTS),
    (
        "deeply nested JSON",
        JSON_TYPE,
        b'{"messages":' + b"[" * 3000 + b"]" * 3000 + b"}",
        INVALID_PROMPTS,
    ),
    ("deeply nested array", JSON_TYPE, b"[" * 3500, INVALID_PROMPTS),
    (
        "another model",
        JSON_TYPE,
        json.dumps({**CHAT, "model": "gpt-3.5"}).encode(),
        f"cannot use own model - must be: {MODEL}",
    ),
    (
        "both messages and prompt",
        JSON_TYPE,
        json.dumps({**CHAT, "prompt": "x"}).encode(),
        "request matches multiple LLM request formats",
    ),
    (
        "completions body on a chat route",
        JSON_TYPE,
        b'{"prompt": "x"}',
        "[llm/v1/completions] message format is not compatible with [llm/v1/chat] route type",
    ),
    (
        "embeddings body on a chat route",
        JSON_TYPE,
        b'{"input": "x"}',
        "[llm/v1/embeddings] message format is not compatible with [llm/v1/chat] route type",
    ),
]


async def test_bodies_an_llm_route_cannot_use_get_kongs_400_without_an_upstream_call(
    fake: FakeOpenAI,
) -> None:
    answers = {}
    async with (
        gateway(fake, Limits(max_body=1 << 20), max_body=1 << 20) as (_, port),
        httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client,
    ):
        for case, content_type, body, _ in BAD_LLM_BODIES:
            headers = {} if content_type is None else {"Content-Type": content_type}
            answers[case] = await client.post("/llm", content=body, headers=headers)
        # one keep-alive connection throughout: none of these cost the client its connection
        assert (await client.post("/llm", json=CHAT)).status_code == 200
    for case, _, _, message in BAD_LLM_BODIES:
        response = answers[case]
        assert response.status_code == 400, (case, response.text)
        assert response.headers["content-type"].startswith("application/json"), case
        assert response.json() == {"error": {"message": message}}, case
    assert len(fake.requests) == 1
