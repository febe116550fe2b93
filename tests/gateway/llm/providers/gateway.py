"""A data plane under test: `data_plane.proxy.ProxyApp` with one LLM plugin on route `/llm`,
called over ASGI by the real `openai` SDK, plus a log-phase probe that keeps each request's
`ctx.log_fields` (what the analytics pipeline would receive)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai
from openai.types.chat import ChatCompletionFunctionToolParam

from data_plane.proxy import ProxyApp
from data_plane.runtime import RuntimeHolder, compile_runtime
from data_plane.upstream import UpstreamClient
from gateway.context import RequestContext
from gateway.credentials import InMemoryCredentials
from gateway.entities import Plugin as PluginEntity
from gateway.entities import Ref, Route, Service
from gateway.plugins import ai_proxy, ai_proxy_advanced
from gateway.plugins.base import BuildContext, Handler, Plugin, PluginConfig
from gateway.snapshot import Snapshot

CONSUMER_KEY = "consumer-key"


class _ProbeConfig(PluginConfig):
    pass


class _Probe(Handler):
    def __init__(self, logs: list[dict[str, object]]) -> None:
        self._logs = logs

    async def log(self, ctx: RequestContext) -> None:
        self._logs.append(dict(ctx.log_fields))


class _ProbePlugin(Plugin[_ProbeConfig]):
    name = "log-probe"
    priority = 1  # after the LLM plugins (770): its log phase sees their fields
    config_model = _ProbeConfig

    def __init__(self, logs: list[dict[str, object]]) -> None:
        self._logs = logs

    def build(self, config: _ProbeConfig, deps: BuildContext) -> Handler:
        return _Probe(self._logs)


@dataclass
class Gateway:
    client: httpx2.AsyncClient
    logs: list[dict[str, object]] = field(default_factory=list)

    def sdk(self) -> openai.AsyncOpenAI:
        """The OpenAI SDK pointed at the route, sending a consumer key as its bearer token."""
        return openai.AsyncOpenAI(
            api_key=CONSUMER_KEY,
            base_url="http://proxy.test/llm",
            http_client=self.client,
            max_retries=0,
        )


@asynccontextmanager
async def gateway(plugin: str, config: dict[str, Any]) -> AsyncIterator[Gateway]:
    """A proxy with `plugin` ("ai-proxy" or "ai-proxy-advanced") configured with `config`."""
    service = Service(host="unused.invalid", port=9)
    route = Route(paths=["/llm"], service=Ref(id=service.id))
    logs: list[dict[str, object]] = []
    probe = _ProbePlugin(logs)
    entities = (PluginEntity(name=plugin, config=config), PluginEntity(name=probe.name, config={}))
    registry: dict[str, Plugin[Any]] = {
        ai_proxy.PLUGIN.name: ai_proxy.PLUGIN,
        ai_proxy_advanced.PLUGIN.name: ai_proxy_advanced.PLUGIN,
        probe.name: probe,
    }
    snapshot = Snapshot.create(1, (service,), (route,), entities)
    holder = RuntimeHolder()
    holder.swap(compile_runtime(snapshot, registry, InMemoryCredentials()))
    upstream = UpstreamClient()
    await upstream.start()
    transport = httpx2.ASGITransport(app=ProxyApp(holder, upstream))
    try:
        async with httpx2.AsyncClient(transport=transport, base_url="http://proxy.test") as client:
            yield Gateway(client, logs)
    finally:
        await upstream.close()


def target(
    provider: str,
    name: str | None,
    upstream_url: str,
    *,
    route_type: str = "llm/v1/chat",
    auth: dict[str, Any] | None = None,
    **options: Any,
) -> dict[str, Any]:
    """An ai-proxy config (= one ai-proxy-advanced target) with statistics logged and prices
    of 1 and 2 per million tokens."""
    return {
        "route_type": route_type,
        "auth": auth,
        "model": {
            "provider": provider,
            "name": name,
            "options": {"upstream_url": upstream_url, "input_cost": 1, "output_cost": 2, **options},
        },
        "logging": {"log_statistics": True},
    }


WEATHER_PARAMETERS: dict[str, object] = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
}
WEATHER_TOOL: ChatCompletionFunctionToolParam = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Current weather in a city",
        "parameters": WEATHER_PARAMETERS,
    },
}
