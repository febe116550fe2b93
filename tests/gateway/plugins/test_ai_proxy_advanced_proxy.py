"""ai-proxy-advanced inside the real data-plane proxy, called by the openai SDK, with the fake
OpenAI as the provider: the user-visible contract end to end (minus the network to the proxy)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import openai
import pytest

from data_plane.proxy import ProxyApp
from data_plane.runtime import RuntimeHolder, compile_runtime
from data_plane.upstream import UpstreamClient
from gateway.credentials import InMemoryCredentials
from gateway.entities import Plugin as PluginEntity
from gateway.entities import Ref, Route, Service
from gateway.plugins.ai_proxy_advanced import PLUGIN
from gateway.snapshot import Snapshot
from tests.fakes.openai_server import FakeOpenAI

PROVIDER_KEY = "sk-provider-key"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=PROVIDER_KEY) as server:
        yield server


async def _proxy(fake: FakeOpenAI, **target_extra: Any) -> AsyncIterator[httpx2.AsyncClient]:
    service = Service(host="unused.invalid", port=9)
    route = Route(paths=["/openai"], service=Ref(id=service.id))
    options = {"upstream_url": fake.url + "/v1/chat/completions", "input_cost": 1}
    target = {
        "route_type": "llm/v1/chat",
        "auth": {"header_name": "Authorization", "header_value": f"Bearer {PROVIDER_KEY}"},
        "model": {"provider": "openai", "name": "gpt-4o", "options": options},
        **target_extra,
    }
    plugin = PluginEntity(name="ai-proxy-advanced", config={"targets": [target]})
    snapshot = Snapshot.create(1, (service,), (route,), (plugin,))
    holder = RuntimeHolder()
    holder.swap(compile_runtime(snapshot, {PLUGIN.name: PLUGIN}, InMemoryCredentials()))
    upstream = UpstreamClient()
    await upstream.start()
    transport = httpx2.ASGITransport(app=ProxyApp(holder, upstream))
    try:
        # httpx2 is the HTTP client the openai SDK is built on.
        async with httpx2.AsyncClient(transport=transport, base_url="http://proxy.test") as client:
            yield client
    finally:
        await upstream.close()


@pytest.fixture
async def proxy(fake: FakeOpenAI) -> AsyncIterator[httpx2.AsyncClient]:
    async for client in _proxy(fake):
        yield client


def _sdk(proxy: httpx2.AsyncClient) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(
        api_key="consumer-key",
        base_url="http://proxy.test/openai",
        http_client=proxy,
        max_retries=0,
    )


async def test_sdk_chat_through_the_proxy(proxy: httpx2.AsyncClient, fake: FakeOpenAI) -> None:
    raw = await _sdk(proxy).chat.completions.with_raw_response.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Say hello."}]
    )
    answer = raw.parse()
    assert answer.choices[0].message.content == "Hello! You said: Say hello."
    assert raw.headers["x-kong-llm-model"] == "openai/gpt-4o"
    assert "set-cookie" not in raw.headers
    [seen] = fake.requests
    assert seen.headers.get_all("authorization") == [f"Bearer {PROVIDER_KEY}"]
    assert not any("consumer-key" in value for _, value in seen.headers)
    assert seen.headers.get("host") == fake.url.removeprefix("http://")


async def test_sdk_stream_through_the_proxy(proxy: httpx2.AsyncClient) -> None:
    stream = await _sdk(proxy).chat.completions.create(
        model="gpt-4o",
        messages=[{"role": "user", "content": "Stream it."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello! You said: Stream it."
    assert chunks[-1].usage is not None


async def test_kong_400_through_the_proxy(proxy: httpx2.AsyncClient, fake: FakeOpenAI) -> None:
    with pytest.raises(openai.BadRequestError) as caught:
        await _sdk(proxy).chat.completions.create(
            model="gpt-3.5-turbo", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.status_code == 400
    assert caught.value.body == {"message": "cannot use own model - must be: gpt-4o"}
    assert fake.requests == []


async def test_missing_choices_is_500_through_the_proxy(
    proxy: httpx2.AsyncClient, fake: FakeOpenAI
) -> None:
    fake.queue_response(200, {"object": "chat.completion"})
    response = await proxy.post(
        "/openai/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 500
    assert json.loads(response.content) == {
        "error": {
            "message": "transformation failed from type openai://llm/v1/chat: "
            "'choices' not in llm/v1/chat response"
        }
    }
    assert response.headers["content-length"] == str(len(response.content))


async def test_provider_error_passes_through(proxy: httpx2.AsyncClient, fake: FakeOpenAI) -> None:
    fake.queue_response(429, {"error": {"message": "Rate limit reached", "code": "rate_limit"}})
    response = await proxy.post(
        "/openai/chat/completions",
        json={"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]},
    )
    assert response.status_code == 429
    assert response.json() == {"error": {"message": "Rate limit reached", "code": "rate_limit"}}
    assert "x-kong-llm-model" not in response.headers
