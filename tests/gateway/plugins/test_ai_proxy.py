"""ai-proxy (Kong OSS): one target at the top level, ai-proxy-advanced's pipeline behind it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.context import Request, RequestContext, Upstream
from gateway.credentials import InMemoryCredentials
from gateway.entities import Plugin as PluginEntity
from gateway.headers import Headers
from gateway.plugins import registry
from gateway.plugins.ai_proxy import PLUGIN, AiProxyHandler
from gateway.plugins.base import BuildContext, Handler
from gateway.snapshot import Snapshot
from tests.fakes.harness import FakeServer
from tests.fakes.openai_compat import OpenAICompatBackend, fake_openai
from tests.gateway.llm.providers.gateway import gateway


def _config(**extra: Any) -> dict[str, Any]:
    return {
        "route_type": "llm/v1/chat",
        "auth": {"header_name": "Authorization", "header_value": "Bearer sk-up"},
        "model": {"provider": "openai", "name": "gpt-4o"},
        **extra,
    }


def _handler(config: dict[str, Any]) -> Handler:
    entity = PluginEntity(name="ai-proxy", config=config)
    deps = BuildContext(Snapshot.create(1), InMemoryCredentials(), entity)
    return PLUGIN.build(PLUGIN.validate(config), deps)


def _context(body: dict[str, Any]) -> RequestContext:
    raw = json.dumps(body).encode()
    headers = Headers([("Content-Type", "application/json"), ("Authorization", "Bearer consumer")])
    request = Request("POST", "http", "gw", 8000, "/llm", "/llm", "", headers, raw, "127.0.0.1")
    upstream = Upstream(host="svc", path="/", method="POST", read_timeout_ms=1234, retries=2)
    return RequestContext(request=request, upstream=upstream, request_id="r1")


def test_registered_with_kongs_priority_and_defaults() -> None:
    assert registry()["ai-proxy"] is PLUGIN
    assert PLUGIN.priority == 770
    config = PLUGIN.validate(_config())
    assert (config.response_streaming, config.model_name_header, config.logging.log_statistics) == (
        "allow",
        True,
        False,
    )


def test_config_errors() -> None:
    with pytest.raises(ValidationError, match="route_type"):
        PLUGIN.validate({"model": {"provider": "openai"}})
    with pytest.raises(ValidationError, match="balancer"):
        PLUGIN.validate(_config(balancer={}))
    with pytest.raises(ValidationError) as caught:
        PLUGIN.validate(_config(auth={"header_name": "x"}))
    assert (
        "all or none of these fields must be set: 'auth.header_name', 'auth.header_value'"
        in str(caught.value)
    )
    with pytest.raises(ValidationError, match="llm_format 'gemini' is not supported"):
        PLUGIN.validate(_config(llm_format="gemini"))
    with pytest.raises(ValidationError, match="genai_category 'audio/speech' is not supported"):
        PLUGIN.validate(_config(genai_category="audio/speech"))


async def test_access_keeps_the_services_timeouts_and_has_no_retry_hook() -> None:
    handler = _handler(_config())
    assert isinstance(handler, AiProxyHandler)
    assert not type(handler).overrides("retry")
    ctx = _context({"messages": [{"role": "user", "content": "hi"}]})
    assert await handler.access(ctx) is None
    up = ctx.upstream
    assert (up.host, up.path, up.read_timeout_ms, up.retries) == (
        "api.openai.com",
        "/v1/chat/completions",
        1234,
        2,
    )
    assert ctx.request.headers.get("Authorization") == "Bearer sk-up"


async def test_kongs_400s() -> None:
    handler = _handler(_config(response_streaming="deny"))
    chat = [{"role": "user", "content": "x"}]
    for body, message in (
        ({"model": "gpt-3.5", "messages": chat}, "cannot use own model - must be: gpt-4o"),
        ({"messages": chat, "stream": True}, "response streaming is not enabled for this LLM"),
        (
            {"prompt": "x"},
            "[llm/v1/completions] message format is not compatible with [llm/v1/chat] route type",
        ),
    ):
        exit_ = await handler.access(_context(body))
        assert exit_ is not None and exit_.status == 400
        assert json.loads(exit_.body) == {"error": {"message": message}}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeServer[OpenAICompatBackend]]:
    with fake_openai(api_key="sk-up") as server:
        yield server


async def test_end_to_end(fake: FakeServer[OpenAICompatBackend]) -> None:
    config = _config(logging={"log_statistics": False})
    config["model"]["options"] = {"upstream_url": fake.url + "/v1/chat/completions"}
    async with gateway("ai-proxy", config) as gw:
        raw = await gw.sdk().chat.completions.with_raw_response.create(
            model="gpt-4o", messages=[{"role": "user", "content": "ping"}]
        )
    assert raw.parse().choices[0].message.content == "Hello! You said: ping"
    assert raw.headers["x-kong-llm-model"] == "openai/gpt-4o"
    [fields] = gw.logs
    # Kong's ai.proxy.* need log_statistics; Lockgate's compact record is always written.
    assert "ai.proxy.usage" not in fields
    record = fields["lockgate.llm"]
    assert isinstance(record, dict)
    assert (record["provider"], record["total_tokens"], record["cost"]) == ("openai", 5, 0.0)
