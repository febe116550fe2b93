"""ai-proxy-advanced access phase: Kong's 400s, the request sent upstream, target selection."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.plugins.ai_proxy_advanced import PLUGIN
from tests.gateway.plugins.ai_proxy_helpers import (
    build,
    chat_body,
    config,
    context,
    sent_body,
    target,
)


def test_identity() -> None:
    assert PLUGIN.name == "ai-proxy-advanced"
    assert PLUGIN.priority == 770


async def _error_of(cfg: dict[str, Any], body: dict[str, Any] | bytes, **kw: Any) -> str:
    ctx = context(body, **kw)
    exit_ = await build(cfg).access(ctx)
    assert exit_ is not None
    assert exit_.status == 400
    assert ("Content-Type", "application/json; charset=utf-8") in exit_.headers
    doc = json.loads(exit_.body)
    assert list(doc) == ["error"] and list(doc["error"]) == ["message"]
    message = doc["error"]["message"]
    assert isinstance(message, str)
    return message


INVALID = "request body doesn't contain valid prompts"


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1, 2]",
        {"model": "gpt-4o"},
        {"messages": []},
        {"messages": {"role": "user"}},
        {"prompt": ["a list"]},
    ],
)
async def test_invalid_prompts(body: dict[str, Any] | bytes) -> None:
    assert await _error_of(config(), body) == INVALID


async def test_non_json_content_type_is_invalid_prompts() -> None:
    headers = [("Content-Type", "text/plain")]
    assert await _error_of(config(), chat_body(), headers=headers) == INVALID


async def test_body_over_max_request_body_size_is_invalid_prompts() -> None:
    body = chat_body("x" * 200)
    assert await _error_of(config(max_request_body_size=100), body) == INVALID
    assert await build(config(max_request_body_size=0)).access(context(body)) is None


async def test_own_model_is_refused() -> None:
    message = await _error_of(config(), chat_body(model="gpt-3.5-turbo"))
    assert message == "cannot use own model - must be: gpt-4o"


async def test_same_or_null_model_is_accepted() -> None:
    for body in (chat_body(model="gpt-4o"), chat_body(model=None), chat_body(model="")):
        ctx = context(body)
        assert await build(config()).access(ctx) is None
        assert sent_body(ctx)["model"] == "gpt-4o"


async def test_model_missing_everywhere() -> None:
    cfg = config(target(model={"provider": "openai"}))
    message = await _error_of(cfg, chat_body())
    assert message == "model parameter not found in request, nor in gateway configuration"


async def test_client_model_used_when_none_configured() -> None:
    ctx = context(chat_body(model="gpt-4o-mini"))
    assert await build(config(target(model={"provider": "openai"}))).access(ctx) is None
    assert sent_body(ctx)["model"] == "gpt-4o-mini"


async def test_multiple_formats() -> None:
    message = await _error_of(config(), chat_body(prompt="also a prompt"))
    assert message == "request matches multiple LLM request formats"


async def test_route_type_mismatch_both_ways() -> None:
    assert await _error_of(config(), {"prompt": "hi"}) == (
        "[llm/v1/completions] message format is not compatible with [llm/v1/chat] route type"
    )
    completions = config(target(route_type="llm/v1/completions"))
    assert await _error_of(completions, chat_body()) == (
        "[llm/v1/chat] message format is not compatible with [llm/v1/completions] route type"
    )


async def test_streaming_denied() -> None:
    message = await _error_of(config(response_streaming="deny"), chat_body(stream=True))
    assert message == "response streaming is not enabled for this LLM"
    ctx = context(chat_body(stream=False))
    assert await build(config(response_streaming="deny")).access(ctx) is None


async def test_chat_request_sent_upstream() -> None:
    ctx = context(chat_body("Hi there", top_k=5, temperature=0.2), query="trace=1")
    assert await build(config()).access(ctx) is None
    up = ctx.upstream
    assert (up.scheme, up.host, up.port, up.path) == (
        "https",
        "api.openai.com",
        443,
        "/v1/chat/completions",
    )
    assert up.method == "POST"
    assert up.host_header == "api.openai.com"
    assert up.query == "trace=1"
    assert up.buffer_response is True
    assert sent_body(ctx) == {
        "messages": [{"role": "user", "content": "Hi there"}],
        "temperature": 0.2,
        "model": "gpt-4o",
        "stream": False,
    }
    headers = ctx.request.headers
    assert headers.get_all("Authorization") == ["Bearer sk-provider"]
    assert headers.get("Content-Type") == "application/json"
    assert headers.get("Accept-Encoding") == "identity"
    assert "Content-Length" not in headers


async def test_completions_route_default_path() -> None:
    ctx = context({"prompt": "Say hi", "model": "gpt-3.5-turbo-instruct"})
    cfg = config(
        target(
            route_type="llm/v1/completions",
            model={"provider": "openai", "name": "gpt-3.5-turbo-instruct"},
        )
    )
    assert await build(cfg).access(ctx) is None
    assert ctx.upstream.path == "/v1/completions"
    assert sent_body(ctx)["prompt"] == "Say hi"


async def test_configured_options_override_the_request() -> None:
    options = {"max_tokens": 256, "temperature": 0, "top_p": 0.5, "top_k": 40}
    cfg = config(target(model={"provider": "openai", "name": "gpt-4o", "options": options}))
    ctx = context(chat_body(max_tokens=10, temperature=1.5, top_p=1, top_k=3))
    assert await build(cfg).access(ctx) is None
    body = sent_body(ctx)
    assert (body["max_tokens"], body["temperature"], body["top_p"]) == (256, 0, 0.5)
    assert "top_k" not in body  # OpenAI has no top_k; Kong's openai driver drops it


async def test_stream_request_is_not_buffered() -> None:
    ctx = context(chat_body(stream=True))
    assert await build(config()).access(ctx) is None
    assert ctx.upstream.buffer_response is False
    assert sent_body(ctx)["stream"] is True


async def test_always_streaming_forces_stream() -> None:
    ctx = context(chat_body())
    assert await build(config(response_streaming="always")).access(ctx) is None
    assert sent_body(ctx)["stream"] is True
    assert ctx.upstream.buffer_response is False


@pytest.mark.parametrize(
    ("url", "expected", "host_header"),
    [
        (
            "http://llm.internal:8080/custom/chat",
            ("http", "llm.internal", 8080, "/custom/chat"),
            "llm.internal:8080",
        ),
        ("http://llm.internal", ("http", "llm.internal", 80, "/"), "llm.internal"),
        ("https://llm.internal/v1/x", ("https", "llm.internal", 443, "/v1/x"), "llm.internal"),
        (
            "https://llm.internal:8443//a",
            ("https", "llm.internal", 8443, "/a"),
            "llm.internal:8443",
        ),
    ],
)
async def test_upstream_url(
    url: str, expected: tuple[str, str, int, str], host_header: str
) -> None:
    options = {"upstream_url": url, "upstream_path": "/ignored"}
    cfg = config(target(model={"provider": "openai", "name": "gpt-4o", "options": options}))
    ctx = context(chat_body())
    assert await build(cfg).access(ctx) is None
    up = ctx.upstream
    assert (up.scheme, up.host, up.port, up.path) == expected
    assert up.host_header == host_header


async def test_upstream_path_on_the_default_host() -> None:
    options = {"upstream_path": "/v2/chat"}
    cfg = config(target(model={"provider": "openai", "name": "gpt-4o", "options": options}))
    ctx = context(chat_body())
    assert await build(cfg).access(ctx) is None
    assert (ctx.upstream.host, ctx.upstream.path) == ("api.openai.com", "/v2/chat")


async def test_preserve_mode_forwards_client_path_and_body() -> None:
    raw = b'{"input": "embed me", "model": "text-embedding-3-small"}'
    cfg = config(target(route_type="preserve", model={"provider": "openai"}))
    ctx = context(raw, path="/v1/embeddings")
    assert await build(cfg).access(ctx) is None
    assert (ctx.upstream.host, ctx.upstream.path) == ("api.openai.com", "/v1/embeddings")
    assert ctx.upstream.body is None  # the client's body goes through byte for byte
    assert ctx.request.headers.get("Authorization") == "Bearer sk-provider"


async def test_allow_override_keeps_the_clients_authorization() -> None:
    auth = {
        "header_name": "Authorization",
        "header_value": "Bearer sk-provider",
        "allow_override": True,
    }
    ctx = context(chat_body())
    assert await build(config(target(auth=auth))).access(ctx) is None
    assert ctx.request.headers.get_all("Authorization") == ["Bearer consumer-key"]


async def test_other_auth_header_still_strips_the_clients_authorization() -> None:
    auth = {"header_name": "api-key", "header_value": "sk-azure-style"}
    ctx = context(chat_body())
    assert await build(config(target(auth=auth))).access(ctx) is None
    assert ctx.request.headers.get("api-key") == "sk-azure-style"
    assert "Authorization" not in ctx.request.headers


async def test_no_auth_configured_passes_the_clients_key() -> None:
    ctx = context(chat_body())
    assert await build(config(target(auth=None))).access(ctx) is None
    assert ctx.request.headers.get("Authorization") == "Bearer consumer-key"


async def test_query_auth_replaces_the_clients_param() -> None:
    auth = {"param_name": "key", "param_value": "sk q&v", "param_location": "query"}
    ctx = context(chat_body(), query="a=b%20c&key=client")
    assert await build(config(target(auth=auth))).access(ctx) is None
    assert ctx.upstream.query == "a=b%20c&key=sk+q%26v"
    assert "Authorization" not in ctx.request.headers


async def test_query_auth_allow_override_keeps_the_clients_param() -> None:
    auth = {
        "param_name": "key",
        "param_value": "sk",
        "param_location": "query",
        "allow_override": True,
    }
    ctx = context(chat_body(), query="key=client")
    assert await build(config(target(auth=auth))).access(ctx) is None
    assert ctx.upstream.query == "key=client"


async def test_body_auth_param() -> None:
    auth = {"param_name": "api_key", "param_value": "sk-body", "param_location": "body"}
    ctx = context(chat_body(api_key="client"))
    assert await build(config(target(auth=auth))).access(ctx) is None
    assert sent_body(ctx)["api_key"] == "sk-body"


async def test_balancer_timeouts_and_retries_reach_the_upstream() -> None:
    cfg = config(
        balancer={
            "connect_timeout": 1000,
            "read_timeout": 2000,
            "write_timeout": 3000,
            "retries": 1,
        }
    )
    ctx = context(chat_body())
    assert await build(cfg).access(ctx) is None
    up = ctx.upstream
    assert (up.connect_timeout_ms, up.read_timeout_ms, up.write_timeout_ms, up.retries) == (
        1000,
        2000,
        3000,
        1,
    )


async def test_weighted_round_robin_across_targets() -> None:
    def model_target(name: str, weight: int) -> dict[str, Any]:
        opts = {"upstream_url": f"http://{name}.local/v1/chat/completions"}
        return target(model={"provider": "openai", "options": opts}, weight=weight)

    handler = build(config(model_target("a", 70), model_target("b", 25), model_target("c", 5)))
    hosts: list[str] = []
    for _ in range(100):
        ctx = context(chat_body(model="m"))
        assert await handler.access(ctx) is None
        hosts.append(ctx.upstream.host)
    assert (hosts.count("a.local"), hosts.count("b.local"), hosts.count("c.local")) == (70, 25, 5)


async def test_missing_content_type_is_read_as_json() -> None:
    headers = [("Authorization", "Bearer consumer-key")]
    ctx = context(chat_body(), headers=headers)
    assert await build(config()).access(ctx) is None
    assert sent_body(ctx)["model"] == "gpt-4o"
    assert ctx.request.headers.get("Content-Type") == "application/json"
