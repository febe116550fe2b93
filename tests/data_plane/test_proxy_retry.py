"""The proxy's retry mechanism (Handler.retry) over real HTTP: a toy plugin re-targets failed
attempts to a second upstream."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.context import Exit, RequestContext
from gateway.entities import Plugin as PluginEntity
from gateway.entities import Ref, Route, Service
from gateway.plugins.base import BuildContext, Handler, Plugin, PluginConfig, UpstreamFailure
from gateway.snapshot import Snapshot
from tests.data_plane.proxy_harness import closed_port, proxy_client
from tests.fakes.openai_server import FakeOpenAI

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


class _ToyConfig(PluginConfig):
    fallback_port: int
    read_timeout_ms: int = 60000


class _ToyHandler(Handler):
    """Sends to the route's service; on a failure, retries once on `fallback_port`."""

    def __init__(self, config: _ToyConfig) -> None:
        self.config = config
        self.failures: list[UpstreamFailure] = []

    async def access(self, ctx: RequestContext) -> Exit | None:
        ctx.upstream.read_timeout_ms = self.config.read_timeout_ms
        return None

    async def retry(self, ctx: RequestContext, failure: UpstreamFailure) -> bool:
        self.failures.append(failure)
        if ctx.upstream.port == self.config.fallback_port:
            return False
        ctx.upstream.port = self.config.fallback_port
        ctx.upstream.host_header = None
        return True


class _ToyPlugin(Plugin[_ToyConfig]):
    name = "retry-toy"
    priority = 10
    config_model = _ToyConfig

    def __init__(self) -> None:
        self.handlers: list[_ToyHandler] = []

    def build(self, config: _ToyConfig, deps: BuildContext) -> Handler:
        handler = _ToyHandler(config)
        self.handlers.append(handler)
        return handler


def _snapshot(port: int, plugin_config: dict[str, Any] | None) -> Snapshot:
    service = Service(host="127.0.0.1", port=port, retries=0, read_timeout=60000)
    route = Route(paths=["/v1"], strip_path=False, service=Ref(id=service.id))
    plugins: tuple[PluginEntity, ...] = ()
    if plugin_config is not None:
        plugins = (PluginEntity(name="retry-toy", config=plugin_config),)
    return Snapshot.create(1, (service,), (route,), plugins)


async def test_failed_head_is_retried_elsewhere_and_never_reaches_the_client() -> None:
    toy = _ToyPlugin()
    with FakeOpenAI() as bad, FakeOpenAI() as good:
        bad.queue_response(500, {"error": {"message": "SECRET-FAILURE"}})
        snapshot = _snapshot(bad.port, {"fallback_port": good.port})
        async with proxy_client(snapshot, {toy.name: toy}) as client:
            response = await client.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 200
        assert b"SECRET-FAILURE" not in response.content
        assert response.json()["choices"][0]["message"]["content"] == "Hello! You said: hi"
        assert (len(bad.requests), len(good.requests)) == (1, 1)
    [handler] = toy.handlers
    assert handler.failures == [UpstreamFailure("status", 500, True)]


async def test_refused_connection_reports_unsent_error_and_is_retried() -> None:
    toy = _ToyPlugin()
    with FakeOpenAI() as good:
        snapshot = _snapshot(closed_port(), {"fallback_port": good.port})
        async with proxy_client(snapshot, {toy.name: toy}) as client:
            response = await client.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 200
        assert len(good.requests) == 1
    assert toy.handlers[0].failures == [UpstreamFailure("error", 0, False)]


async def test_hook_declining_returns_the_last_failure() -> None:
    toy = _ToyPlugin()
    with FakeOpenAI() as first, FakeOpenAI() as second:
        first.queue_response(500, {"error": "first"})
        second.queue_response(503, {"error": "second"}, {"Retry-After": "7"})
        snapshot = _snapshot(first.port, {"fallback_port": second.port})
        async with proxy_client(snapshot, {toy.name: toy}) as client:
            response = await client.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == 503
        assert response.json() == {"error": "second"}
        assert response.headers["retry-after"] == "7"
    assert [f.status for f in toy.handlers[0].failures] == [500, 503]


async def test_timeouts_are_per_attempt_and_exhausted_timeout_is_kong_504() -> None:
    toy = _ToyPlugin()
    with FakeOpenAI() as first, FakeOpenAI() as second:
        first.queue_stall(1)
        second.queue_stall(1)
        config = {"fallback_port": second.port, "read_timeout_ms": 200}
        snapshot = _snapshot(first.port, config)
        loop = asyncio.get_running_loop()
        async with proxy_client(snapshot, {toy.name: toy}) as client:
            began = loop.time()
            response = await client.post("/v1/chat/completions", json=CHAT)
            elapsed = loop.time() - began
        assert response.status_code == 504
        assert response.json()["message"] == "The upstream server is timing out"
        assert 0.35 < elapsed < 0.9  # two attempts of ~0.2 s each, not a full stall
        assert (len(first.requests), len(second.requests)) == (1, 1)
    assert toy.handlers[0].failures == [UpstreamFailure("timeout", 0, True)] * 2


async def test_dropped_connection_is_an_error_and_502() -> None:
    toy = _ToyPlugin()
    with FakeOpenAI() as first, FakeOpenAI() as second:
        first.queue_drop()
        second.queue_drop()
        snapshot = _snapshot(first.port, {"fallback_port": second.port})
        async with proxy_client(snapshot, {toy.name: toy}) as client:
            response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 502
    assert toy.handlers[0].failures == [UpstreamFailure("error", 0, True)] * 2


@pytest.mark.parametrize("status", [200, 404, 500])
async def test_without_a_hook_answers_pass_through_and_nothing_is_retried(status: int) -> None:
    with FakeOpenAI() as only:
        if status != 200:
            only.queue_response(status, {"error": status})
        async with proxy_client(_snapshot(only.port, None), {}) as client:
            response = await client.post("/v1/chat/completions", json=CHAT)
        assert response.status_code == status
        assert len(only.requests) == 1


async def test_without_a_hook_refused_connection_is_kong_502() -> None:
    async with proxy_client(_snapshot(closed_port(), None), {}) as client:
        response = await client.post("/v1/chat/completions", json=CHAT)
    assert response.status_code == 502
    assert response.json()["message"] == (
        "An invalid response was received from the upstream server"
    )
