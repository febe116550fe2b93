"""ai-proxy-advanced response phases: headers, the choices check, usage and payload logging."""

from __future__ import annotations

import json
from typing import Any

from gateway.context import ResponseHead
from gateway.headers import Headers
from tests.gateway.plugins.ai_proxy_helpers import (
    PLUGIN_ID,
    build,
    chat_body,
    config,
    context,
    respond,
    target,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _answer(**extra: Any) -> bytes:
    doc = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-2024-08-06",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!"}}],
        "usage": {"prompt_tokens": 25, "completion_tokens": 12, "total_tokens": 37},
        **extra,
    }
    return json.dumps(doc).encode()


def _stats_target(**model_options: Any) -> dict[str, Any]:
    return target(
        model={"provider": "openai", "name": "gpt-4o", "options": model_options},
        logging={"log_statistics": True, "log_payloads": True},
    )


UPSTREAM_HEADERS = [
    ("Content-Type", "application/json"),
    ("Content-Length", "300"),
    ("Set-Cookie", "__cf_bm=x; path=/"),
    ("x-request-id", "req_abc"),
]


async def test_success_headers_and_unchanged_body() -> None:
    handler = build(config())
    ctx = context(chat_body())
    assert await handler.access(ctx) is None
    head, out = respond(handler, ctx, 200, [_answer()], UPSTREAM_HEADERS)
    assert head.status == 200
    assert head.headers.get("X-Kong-LLM-Model") == "openai/gpt-4o"
    assert "Set-Cookie" not in head.headers
    assert "Content-Length" not in head.headers
    assert head.headers.get("x-request-id") == "req_abc"
    assert out == _answer()


async def test_model_name_header_can_be_disabled_but_kong_debug_forces_it() -> None:
    handler = build(config(model_name_header=False))
    ctx = context(chat_body())
    assert await handler.access(ctx) is None
    head, _ = respond(handler, ctx, 200, [_answer()])
    assert "X-Kong-LLM-Model" not in head.headers

    debug = context(chat_body())
    debug.request.headers.add("Kong-Debug", "1")
    assert await handler.access(debug) is None
    head, _ = respond(handler, debug, 200, [_answer()])
    assert head.headers.get("X-Kong-LLM-Model") == "openai/gpt-4o"


async def test_upstream_error_passes_through_untouched() -> None:
    handler = build(config())
    ctx = context(chat_body())
    assert await handler.access(ctx) is None
    error = b'{"error":{"message":"Incorrect API key provided","code":"invalid_api_key"}}'
    head, out = respond(handler, ctx, 401, [error], UPSTREAM_HEADERS)
    assert head.status == 401
    assert head.headers.items() == UPSTREAM_HEADERS
    assert out == error


async def test_answer_without_choices_becomes_kongs_500() -> None:
    handler = build(config())
    ctx = context(chat_body())
    assert await handler.access(ctx) is None
    head, out = respond(handler, ctx, 200, [b'{"object":"nothing"}'])
    assert head.status == 500
    assert head.headers.get("Content-Type") == "application/json; charset=utf-8"
    assert json.loads(out) == {
        "error": {
            "message": "transformation failed from type openai://llm/v1/chat: "
            "'choices' not in llm/v1/chat response"
        }
    }


async def test_non_json_answer_becomes_kongs_500_for_completions() -> None:
    cfg = config(target(route_type="llm/v1/completions"))
    handler = build(cfg)
    ctx = context({"prompt": "hi"})
    assert await handler.access(ctx) is None
    head, out = respond(handler, ctx, 200, [b"<html>oops</html>"])
    assert head.status == 500
    assert json.loads(out)["error"]["message"] == (
        "transformation failed from type openai://llm/v1/completions: "
        "'choices' not in llm/v1/completions response"
    )


async def test_chunks_are_held_until_eof_when_not_buffered() -> None:
    handler = build(config())
    ctx = context(chat_body())
    assert await handler.access(ctx) is None
    body = _answer()
    head, out = respond(handler, ctx, 200, [body[:10], body[10:], b""])
    assert (head.status, out) == (200, body)


async def test_usage_recorded_with_cost_and_latency() -> None:
    clock = Clock()
    handler = build(config(_stats_target(input_cost=10, output_cost=10)), clock)
    ctx = context(chat_body("Hello there"))
    assert await handler.access(ctx) is None
    clock.now += 0.370
    respond(handler, ctx, 200, [_answer()])
    await handler.log(ctx)
    assert ctx.log_fields["ai.proxy.meta"] == {
        "plugin_id": PLUGIN_ID,
        "provider_name": "openai",
        "request_model": "gpt-4o",
        "response_model": "gpt-4o-2024-08-06",
        "llm_latency": 370,
        "request_mode": "oneshot",
    }
    assert ctx.log_fields["ai.proxy.usage"] == {
        "prompt_tokens": 25,
        "completion_tokens": 12,
        "total_tokens": 37,
        "time_per_token": 370 / 12,
        "cost": 0.00037,
    }
    assert ctx.log_fields["ai.proxy.payload.request"] == ctx.request.body.decode()
    assert ctx.log_fields["ai.proxy.payload.response"] == _answer().decode()


async def test_no_statistics_unless_configured() -> None:
    handler = build(config())
    ctx = context(chat_body())
    assert await handler.access(ctx) is None
    respond(handler, ctx, 200, [_answer()])
    await handler.log(ctx)
    # Kong's fields need log_statistics; Lockgate's compact analytics record is always there.
    assert set(ctx.log_fields) == {"lockgate.llm"}


async def test_nothing_logged_for_a_request_refused_in_access() -> None:
    handler = build(config(_stats_target()))
    ctx = context(chat_body(model="other"))
    assert await handler.access(ctx) is not None
    ctx.response_source = "exit"
    head = ResponseHead(400, Headers([("Content-Type", "application/json")]))
    handler.header_filter(ctx, head)
    assert handler.body_filter(ctx, b"{}", True) == b"{}"
    await handler.log(ctx)
    assert ctx.log_fields == {}
    assert "X-Kong-LLM-Model" not in head.headers


def _sse(*payloads: str) -> bytes:
    return b"".join(f"data: {p}\n\n".encode() for p in payloads)


def _chunk(content: str | None = None, usage: object = None, finish: str | None = None) -> str:
    choices = (
        [] if usage else [{"index": 0, "delta": {"content": content}, "finish_reason": finish}]
    )
    doc: dict[str, Any] = {
        "object": "chat.completion.chunk",
        "model": "gpt-4o-x",
        "choices": choices,
    }
    if usage:
        doc["usage"] = usage
    return json.dumps(doc)


async def test_stream_passes_through_and_counts_reported_usage() -> None:
    clock = Clock()
    handler = build(config(_stats_target(input_cost=2, output_cost=4)), clock)
    ctx = context(chat_body("hi", stream=True, stream_options={"include_usage": True}))
    assert await handler.access(ctx) is None
    usage = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
    stream = _sse(
        _chunk("Hel"), _chunk("lo!"), _chunk(None, finish="stop"), _chunk(usage=usage), "[DONE]"
    )
    # Split mid-line and mid-event, as TCP may.
    pieces = [stream[:7], stream[7:50], stream[50:51], stream[51:], b""]
    clock.now += 1.5
    head, out = respond(
        handler, ctx, 200, pieces, [("Content-Type", "text/event-stream; charset=utf-8")]
    )
    assert out == stream
    assert head.headers.get("Content-Type") == "text/event-stream"
    assert head.headers.get("X-Kong-LLM-Model") == "openai/gpt-4o"
    await handler.log(ctx)
    assert ctx.log_fields["ai.proxy.usage"] == {
        "prompt_tokens": 9,
        "completion_tokens": 3,
        "total_tokens": 12,
        "time_per_token": 500.0,
        "cost": (9 * 2 + 3 * 4) / 1e6,
    }
    meta = ctx.log_fields["ai.proxy.meta"]
    assert isinstance(meta, dict)
    assert (meta["request_mode"], meta["response_model"], meta["llm_latency"]) == (
        "stream",
        "gpt-4o-x",
        1500,
    )
    assert ctx.log_fields["ai.proxy.payload.response"] == "Hello!"


async def test_stream_without_usage_is_estimated_like_kong() -> None:
    handler = build(config(_stats_target()))
    ctx = context(chat_body("one two three four five", stream=True))
    assert await handler.access(ctx) is None
    text = "a" * 17
    respond(
        handler, ctx, 200, [_sse(_chunk(text), "[DONE]")], [("Content-Type", "text/event-stream")]
    )
    await handler.log(ctx)
    usage = ctx.log_fields["ai.proxy.usage"]
    assert isinstance(usage, dict)
    # prompt: 5 words x 1.8 = 9; completion: ceil(17 / 4) = 5
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (9, 5, 14)
