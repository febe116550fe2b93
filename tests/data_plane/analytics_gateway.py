"""An in-process gateway for the analytics and metrics tests: the real ProxyApp with an observer,
two routes to the fake OpenAI (`/v1`: plain proxying; `/llm`: ai-proxy-advanced with costs and
key-auth, consumer "alice" with key "alice-key"), driven over ASGI with httpx."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx

from data_plane.proxy import ProxyApp
from data_plane.runtime import RuntimeHolder, compile_runtime
from data_plane.upstream import UpstreamClient
from gateway.context import ConsumerInfo, CredentialInfo, RequestContext
from gateway.credentials import CredentialMatch, InMemoryCredentials
from gateway.entities import Plugin, Ref, Route, Service
from gateway.plugins import registry
from gateway.snapshot import Snapshot
from tests.fakes.openai_server import FakeOpenAI

PROVIDER_KEY = "sk-provider"
INPUT_COST = 2.5  # per million tokens
OUTPUT_COST = 10.0
CONSUMER_KEY = "alice-key"


def expected_cost(prompt: int, completion: int) -> float:
    """What ai-proxy-advanced computes for one answer (docs/plugins/ai-proxy.md)."""
    return (prompt * INPUT_COST + completion * OUTPUT_COST) / 1e6


def snapshot(fake_url: str) -> Snapshot:
    host, port = fake_url.removeprefix("http://").split(":")
    plain = Service(name="plain-svc", host=host, port=int(port))
    plain_route = Route(name="plain", paths=["/v1"], strip_path=False, service=Ref(id=plain.id))
    llm = Service(name="llm-svc", host="unused.invalid", port=9)
    llm_route = Route(name="llm", paths=["/llm"], service=Ref(id=llm.id))
    options = {
        "upstream_url": fake_url + "/v1/chat/completions",
        "input_cost": INPUT_COST,
        "output_cost": OUTPUT_COST,
    }
    target = {
        "route_type": "llm/v1/chat",
        "auth": {"header_name": "Authorization", "header_value": f"Bearer {PROVIDER_KEY}"},
        "model": {"provider": "openai", "name": "gpt-4o", "options": options},
    }
    plugins = (
        Plugin(name="key-auth", route=Ref(id=llm_route.id), config={"key_names": ["apikey"]}),
        Plugin(name="ai-proxy-advanced", route=Ref(id=llm_route.id), config={"targets": [target]}),
    )
    return Snapshot.create(3, (plain, llm), (plain_route, llm_route), plugins)


@dataclass
class Gateway:
    client: httpx.AsyncClient

    async def plain(self, path: str = "/v1/chat/completions") -> httpx.Response:
        chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
        auth = {"Authorization": f"Bearer {PROVIDER_KEY}"}  # the fake checks it; no plugin adds it
        return await self.client.post(path, json=chat, headers=auth)

    async def llm(self, words: str, key: str = CONSUMER_KEY) -> httpx.Response:
        chat = {"model": "gpt-4o", "messages": [{"role": "user", "content": words}]}
        return await self.client.post("/llm", json=chat, headers={"apikey": key})


@asynccontextmanager
async def gateway(
    fake: FakeOpenAI, observer: Callable[[RequestContext], None]
) -> AsyncIterator[Gateway]:
    credentials = InMemoryCredentials()
    credentials.add(
        CONSUMER_KEY,
        CredentialMatch(CredentialInfo("cred-1", "c-1"), ConsumerInfo("c-1", "alice")),
    )
    holder = RuntimeHolder()
    holder.swap(compile_runtime(snapshot(fake.url), registry(), credentials))
    upstream = UpstreamClient()
    await upstream.start()
    app = ProxyApp(holder, upstream, observer=observer)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://gw"
        ) as client:
            yield Gateway(client)
    finally:
        await upstream.close()
