"""`ProxyApp` on the data plane's own server and upstream client (what `lockgate data-plane`
runs), over real sockets: the walkthrough's pipeline against the fake OpenAI, SSE streamed
through, the body limit on a chunked upload, `Expect: 100-continue` answered by the proxy and
not forwarded, an https upstream verified against its CA (and refused when untrusted), and a
client that leaves before its body is complete never reaching the upstream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from data_plane.http_server import HttpServer
from data_plane.proxy import ProxyApp
from data_plane.runtime import RuntimeHolder, compile_runtime
from data_plane.upstream import UpstreamClient
from gateway.context import ConsumerInfo, CredentialInfo
from gateway.credentials import CredentialMatch, InMemoryCredentials
from gateway.entities import Plugin as PluginEntity
from gateway.entities import Ref, Route, Service
from gateway.plugins import registry
from gateway.snapshot import Snapshot
from gateway.vault import NO_VAULT, EnvVault
from tests.data_plane.tls_certs import TestCA
from tests.fakes.openai_server import FakeOpenAI

KEY = "consumer-key-1"
PROVIDER_KEY = "sk-provider"
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
BEARER = """local auth_header = kong.request.get_header("Authorization")
if auth_header and auth_header:find("^Bearer ") then
  kong.service.request.set_header("apikey", auth_header:sub(8))
end
"""


def _snapshot(
    llm_url: str,
    plain_host: str,
    plain_port: int,
    protocol: str = "http",
    header_value: str = f"Bearer {PROVIDER_KEY}",
) -> Snapshot:
    service = Service(host=plain_host, port=plain_port, protocol=protocol, retries=0)
    llm = Route(name="llm", paths=["/llm"], service=Ref(id=service.id))
    plain = Route(name="plain", paths=["/plain"], service=Ref(id=service.id))
    ai = {
        "targets": [
            {
                "route_type": "llm/v1/chat",
                "auth": {"header_name": "Authorization", "header_value": header_value},
                "model": {
                    "provider": "openai",
                    "name": "gpt-4o",
                    "options": {"upstream_url": llm_url},
                },
            }
        ]
    }
    plugins = (
        PluginEntity(name="pre-function", route=Ref(id=llm.id), config={"access": [BEARER]}),
        PluginEntity(name="key-auth", route=Ref(id=llm.id), config={"key_names": ["apikey"]}),
        PluginEntity(name="ai-proxy-advanced", route=Ref(id=llm.id), config=ai),
    )
    return Snapshot.create(1, (service,), (llm, plain), plugins)


@contextlib.asynccontextmanager
async def serving(
    snapshot: Snapshot, upstream: UpstreamClient | None = None, vault: EnvVault = NO_VAULT
) -> AsyncIterator[str]:
    credentials = InMemoryCredentials()
    credentials.add(KEY, CredentialMatch(CredentialInfo("k1", "c1"), ConsumerInfo(id="c1")))
    holder = RuntimeHolder()
    holder.swap(compile_runtime(snapshot, registry(), credentials, vault))
    app = ProxyApp(holder, upstream or UpstreamClient(), max_body=1000)
    await app.startup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    sock.setblocking(False)
    server = HttpServer(app)
    await server.start([sock])
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        await server.shutdown(timeout_s=2)
        await app.shutdown()
        sock.close()


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=PROVIDER_KEY, stream_delay=0.15) as server:
        yield server


async def test_walkthrough_pipeline(fake: FakeOpenAI) -> None:
    async with (
        serving(_snapshot(f"{fake.url}/v1/chat/completions", "127.0.0.1", 9)) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        good = await client.post("/llm", json=CHAT, headers={"Authorization": f"Bearer {KEY}"})
        bad = await client.post("/llm", json=CHAT, headers={"Authorization": "Bearer wrong"})
    assert good.status_code == 200
    assert good.json()["choices"][0]["message"]["content"] == "Hello! You said: hi"
    assert good.headers["x-kong-request-id"]
    assert fake.requests[0].headers.get("authorization") == f"Bearer {PROVIDER_KEY}"
    assert bad.status_code == 401
    assert len(fake.requests) == 1


async def test_sse_is_streamed_through(fake: FakeOpenAI) -> None:
    async with (
        serving(_snapshot(f"{fake.url}/v1/chat/completions", "127.0.0.1", 9)) as url,
        httpx.AsyncClient(base_url=url, timeout=10) as client,
    ):
        started = time.monotonic()
        arrivals = []
        events = []
        async with client.stream(
            "POST",
            "/llm",
            json={**CHAT, "stream": True},
            headers={"Authorization": f"Bearer {KEY}"},
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            async for line in response.aiter_lines():
                if line.startswith("data: "):
                    arrivals.append(time.monotonic() - started)
                    events.append(line[6:])
    assert events[-1] == "[DONE]"
    text = "".join(
        json.loads(e)["choices"][0]["delta"].get("content") or ""
        for e in events[:-1]
        if json.loads(e)["choices"]
    )
    assert text == "Hello! You said: hi"
    # Events arrive as the upstream sends them (0.15 s apart), not all at the end.
    assert arrivals[-1] - arrivals[0] > 0.5


class Recorder:
    """A loopback upstream echoing bodies; records each request head."""

    def __init__(self) -> None:
        self.heads: list[bytes] = []
        self.writers: list[asyncio.StreamWriter] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def __aenter__(self) -> Recorder:
        self.server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        await self.server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.writers.append(writer)
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                self.heads.append(head)
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                body = await reader.readexactly(length)
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%b" % (len(body), body))


async def _close(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(ConnectionError):
        await writer.wait_closed()


async def test_chunked_upload_over_the_body_limit_is_413() -> None:
    async with (
        Recorder() as upstream,
        serving(_snapshot("http://unused.invalid", "127.0.0.1", upstream.port)) as url,
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
        writer.write(b"POST /plain HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
        for _ in range(3):
            writer.write(b"200\r\n" + b"z" * 512 + b"\r\n")
        writer.write(b"0\r\n\r\n")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        await _close(writer)
    assert head.startswith(b"HTTP/1.1 413 ")
    assert upstream.heads == []


async def test_expect_100_continue_is_answered_by_the_proxy_and_not_forwarded() -> None:
    async with (
        Recorder() as upstream,
        serving(_snapshot("http://unused.invalid", "127.0.0.1", upstream.port)) as url,
    ):
        reader, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
        writer.write(
            b"POST /plain HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        interim = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        writer.write(b"hello")
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
        body = await reader.readexactly(5)
        await _close(writer)
    assert interim == b"HTTP/1.1 100 Continue\r\n\r\n"
    assert head.startswith(b"HTTP/1.1 200 ") and body == b"hello"
    assert b"expect" not in upstream.heads[0].lower()


async def test_client_leaving_mid_body_never_reaches_the_upstream() -> None:
    async with (
        Recorder() as upstream,
        serving(_snapshot("http://unused.invalid", "127.0.0.1", upstream.port)) as url,
    ):
        _, writer = await asyncio.open_connection("127.0.0.1", int(url.rsplit(":", 1)[1]))
        writer.write(b"POST /plain HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\npartial")
        await writer.drain()
        await asyncio.sleep(0.1)
        await _close(writer)
        await asyncio.sleep(0.2)
    assert upstream.heads == []


@pytest.fixture(scope="module")
def ca() -> TestCA:
    return TestCA()


async def _tls_upstream(ca: TestCA) -> asyncio.Server:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
            await reader.readuntil(b"\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 6\r\n\r\nsecure")
            await writer.drain()
        writer.close()

    return await asyncio.start_server(handle, "127.0.0.1", 0, ssl=ca.server_context("localhost"))


async def test_https_upstream_is_verified(ca: TestCA) -> None:
    upstream = await _tls_upstream(ca)
    port = upstream.sockets[0].getsockname()[1]
    snapshot = _snapshot("http://unused.invalid", "localhost", port, protocol="https")
    trusting = UpstreamClient(ssl_context=ca.client_context())
    async with serving(snapshot, trusting) as url, httpx.AsyncClient(base_url=url) as client:
        trusted = await client.get("/plain")
    async with serving(snapshot) as url, httpx.AsyncClient(base_url=url) as client:
        untrusted = await client.get("/plain")
    upstream.close()
    assert (trusted.status_code, trusted.text) == (200, "secure")
    assert untrusted.status_code == 502
