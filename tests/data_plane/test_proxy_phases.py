"""Which plugin phases run for a request, over real HTTP: Kong's rules (an exit in access skips
the later access handlers but still runs every collected plugin's response phases; a plugin
error stops collecting at the failing plugin) hold the same whether the route's pipeline is the
same for every consumer or has consumer-specific instances."""

from __future__ import annotations

from typing import Any, Literal

import httpx
import pytest

from gateway.context import Exit, RequestContext, ResponseHead
from gateway.entities import Consumer, Ref, Route, Service
from gateway.entities import Plugin as PluginEntity
from gateway.plugins.base import BuildContext, Handler, Plugin, PluginConfig
from gateway.snapshot import Snapshot
from tests.data_plane.proxy_harness import proxy_client
from tests.fakes.openai_server import FakeOpenAI

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


class _Config(PluginConfig):
    access: Literal["pass", "exit", "raise"] = "pass"
    buffer: bool = False


class _Recorder(Handler):
    def __init__(self, name: str, config: _Config, calls: list[str]) -> None:
        self.name, self.config, self.calls = name, config, calls

    async def access(self, ctx: RequestContext) -> Exit | None:
        self.calls.append(f"access:{self.name}")
        if self.config.buffer:
            ctx.upstream.buffer_response = True
        if self.config.access == "exit":
            return Exit(403, b'{"message":"stopped"}', (("Content-Type", "application/json"),))
        if self.config.access == "raise":
            raise RuntimeError("boom")
        return None

    def header_filter(self, ctx: RequestContext, head: ResponseHead) -> None:
        self.calls.append(f"header_filter:{self.name}")
        head.headers.add("X-Seen-By", self.name)

    def body_filter(self, ctx: RequestContext, chunk: bytes, eof: bool) -> bytes:
        if eof:
            self.calls.append(f"body_filter:{self.name}")
            return chunk + f"<{self.name}>".encode()
        return chunk

    async def log(self, ctx: RequestContext) -> None:
        self.calls.append(f"log:{self.name}")


def _plugin(plugin_name: str, plugin_priority: int, calls: list[str]) -> Plugin[_Config]:
    class _P(Plugin[_Config]):
        name = plugin_name
        priority = plugin_priority
        config_model = _Config

        def build(self, config: _Config, deps: BuildContext) -> Handler:
            return _Recorder(plugin_name, config, calls)

    return _P()


def _run(
    port: int, configs: dict[str, dict[str, Any]], per_consumer: bool
) -> tuple[Snapshot, dict[str, Plugin[Any]], list[str]]:
    calls: list[str] = []
    registry: dict[str, Plugin[Any]] = {
        name: _plugin(name, priority, calls) for name, priority in (("a", 30), ("b", 20), ("c", 10))
    }
    service = Service(host="127.0.0.1", port=port, retries=0)
    route = Route(paths=["/v1"], strip_path=False, service=Ref(id=service.id))
    plugins = [
        PluginEntity(name=name, route=Ref(id=route.id), config=configs.get(name, {}))
        for name in registry
    ]
    consumers: tuple[Consumer, ...] = ()
    if per_consumer:
        # A consumer nobody authenticates as: its instance is never picked, but the route's
        # pipeline is no longer the same for everyone.
        other = Consumer(username="other")
        consumers = (other,)
        plugins.append(PluginEntity(name="c", route=Ref(id=route.id), consumer=Ref(id=other.id)))
    snapshot = Snapshot.create(1, (service,), (route,), tuple(plugins), consumers)
    return snapshot, registry, calls


async def _stopped_in_access(
    behaviour: str, per_consumer: bool
) -> tuple[httpx.Response, list[str]]:
    """A chat request whose plugin `b` does `behaviour` in access; nothing may reach the
    upstream. The response and the phases called."""
    with FakeOpenAI() as upstream:
        snapshot, registry, calls = _run(upstream.port, {"b": {"access": behaviour}}, per_consumer)
        async with proxy_client(snapshot, registry) as client:
            response = await client.post("/v1/chat/completions", json=CHAT)
        assert upstream.requests == []
    return response, calls


PIPELINES = pytest.mark.parametrize("per_consumer", [False, True], ids=["fixed", "per-consumer"])


@PIPELINES
@pytest.mark.parametrize("buffer", [False, True], ids=["streamed", "buffered"])
async def test_every_phase_runs_in_order_and_body_changes_are_framed(
    per_consumer: bool, buffer: bool
) -> None:
    with FakeOpenAI() as upstream:
        snapshot, registry, calls = _run(upstream.port, {"a": {"buffer": buffer}}, per_consumer)
        async with proxy_client(snapshot, registry) as client:
            response = await client.post("/v1/chat/completions", json=CHAT)
        assert len(upstream.requests) == 1
    assert response.status_code == 200
    assert response.content.endswith(b"<a><b><c>")
    assert b"Hello! You said: hi" in response.content
    assert response.headers.get_list("x-seen-by") == ["a", "b", "c"]
    if buffer:
        assert response.headers["content-length"] == str(len(response.content))
    else:
        assert response.headers["transfer-encoding"] == "chunked"
    assert calls == [
        *(f"{phase}:{name}" for phase in ("access", "header_filter") for name in "abc"),
        *(f"{phase}:{name}" for phase in ("body_filter", "log") for name in "abc"),
    ]


@PIPELINES
async def test_an_exit_skips_later_access_but_every_plugin_filters_and_logs_it(
    per_consumer: bool,
) -> None:
    response, calls = await _stopped_in_access("exit", per_consumer)
    assert response.status_code == 403
    assert response.content == b'{"message":"stopped"}<a><b><c>'
    assert response.headers["content-length"] == str(len(response.content))
    assert response.headers.get_list("x-seen-by") == ["a", "b", "c"]
    assert calls == [
        "access:a",
        "access:b",
        *(f"{phase}:{name}" for phase in ("header_filter", "body_filter", "log") for name in "abc"),
    ]


@PIPELINES
async def test_an_access_error_is_a_500_and_later_plugins_see_nothing(per_consumer: bool) -> None:
    response, calls = await _stopped_in_access("raise", per_consumer)
    assert response.status_code == 500
    assert response.headers.get_list("x-seen-by") == ["a", "b"]
    assert response.content.endswith(b"<a><b>")
    assert calls == [
        "access:a",
        "access:b",
        *(f"{phase}:{name}" for phase in ("header_filter", "body_filter", "log") for name in "ab"),
    ]
