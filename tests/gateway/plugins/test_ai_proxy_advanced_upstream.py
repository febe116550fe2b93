"""ai-proxy-advanced against the fake OpenAI over real HTTP: what reaches the provider and what
comes back, with the proxy's part played by httpx exactly as the handler set up ctx.upstream."""

from __future__ import annotations

import json
from typing import Any

import httpx

from gateway.context import RequestContext, ResponseHead
from gateway.headers import Headers
from gateway.plugins.ai_proxy_advanced import AiProxyAdvancedHandler
from tests.fakes.openai_server import FakeOpenAI
from tests.gateway.plugins.ai_proxy_helpers import build, chat_body, config, context, target


def _handler(fake: FakeOpenAI) -> AiProxyAdvancedHandler:
    options = {"upstream_url": fake.url + "/v1/chat/completions"}
    model = {"provider": "openai", "name": "gpt-4o", "options": options}
    return build(config(target(model=model, logging={"log_statistics": True})))


def _upstream_request(client: httpx.AsyncClient, ctx: RequestContext) -> httpx.Request:
    up = ctx.upstream
    headers = [
        (k, v) for k, v in ctx.request.headers if k.lower() not in ("host", "content-length")
    ]
    headers.append(("Host", up.host_header or up.host))
    url = f"{up.scheme}://{up.host}:{up.port}{up.path}" + (f"?{up.query}" if up.query else "")
    body = up.body if up.body is not None else ctx.request.body
    return client.build_request(up.method, url, headers=headers, content=body)


async def test_chat_reaches_provider_with_provider_key_only() -> None:
    with FakeOpenAI(api_key="sk-provider") as fake:
        handler = _handler(fake)
        ctx = context(chat_body("Hello", model="gpt-4o", top_k=3))
        assert await handler.access(ctx) is None
        async with httpx.AsyncClient() as client:
            response = await client.send(_upstream_request(client, ctx))
        head = ResponseHead(response.status_code, Headers(response.headers.multi_items()))
        ctx.response = head
        handler.header_filter(ctx, head)
        body = handler.body_filter(ctx, response.content, True)
        await handler.log(ctx)

        [seen] = fake.requests
    assert head.status == 200
    assert json.loads(body)["choices"][0]["message"]["content"] == "Hello! You said: Hello"
    assert head.headers.get("X-Kong-LLM-Model") == "openai/gpt-4o"
    assert "set-cookie" not in head.headers
    assert seen.headers.get_all("authorization") == ["Bearer sk-provider"]
    assert not any("consumer-key" in v for _, v in seen.headers)
    assert seen.json == {
        "messages": [{"role": "user", "content": "Hello"}],
        "model": "gpt-4o",
        "stream": False,
    }
    usage = ctx.log_fields["ai.proxy.usage"]
    assert isinstance(usage, dict)
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (1, 4)


async def test_stream_with_usage_through_the_handler() -> None:
    with FakeOpenAI(api_key="sk-provider") as fake:
        handler = _handler(fake)
        request: dict[str, Any] = chat_body(
            "stream this", stream=True, stream_options={"include_usage": True}
        )
        ctx = context(request)
        assert await handler.access(ctx) is None
        out = b""
        async with httpx.AsyncClient() as client:
            response = await client.send(_upstream_request(client, ctx), stream=True)
            head = ResponseHead(response.status_code, Headers(response.headers.multi_items()))
            ctx.response = head
            handler.header_filter(ctx, head)
            async for chunk in response.aiter_raw():
                out += handler.body_filter(ctx, chunk, False)
            out += handler.body_filter(ctx, b"", True)
            await response.aclose()
        await handler.log(ctx)
    assert head.headers.get("Content-Type") == "text/event-stream"
    texts = []
    for event in out.decode().split("\n\n"):
        payload = event.removeprefix("data: ")
        if payload and payload != "[DONE]":
            for choice in json.loads(payload)["choices"]:
                texts.append(choice["delta"].get("content") or "")
    assert "".join(texts) == "Hello! You said: stream this"
    usage = ctx.log_fields["ai.proxy.usage"]
    assert isinstance(usage, dict)
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (2, 5, 7)


async def test_provider_rejection_passes_through() -> None:
    with FakeOpenAI(api_key="another-key") as fake:
        handler = _handler(fake)
        ctx = context(chat_body())
        assert await handler.access(ctx) is None
        async with httpx.AsyncClient() as client:
            response = await client.send(_upstream_request(client, ctx))
        head = ResponseHead(response.status_code, Headers(response.headers.multi_items()))
        ctx.response = head
        handler.header_filter(ctx, head)
        body = handler.body_filter(ctx, response.content, True)
    assert head.status == 401
    assert json.loads(body)["error"]["code"] == "invalid_api_key"
    assert "X-Kong-LLM-Model" not in head.headers
