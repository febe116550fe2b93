"""ai-proxy-advanced: the JSON that reaches the provider and the client is valid UTF-8 JSON,
whatever the client's body holds, and per-target work done once gives per-request results."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.gateway.plugins.ai_proxy_helpers import (
    build,
    chat_body,
    config,
    context,
    respond,
    sent_body,
    target,
)


def _strict(raw: bytes) -> Any:
    """`raw` read as standard JSON: strict UTF-8, no NaN/Infinity."""

    def refuse(name: str) -> None:
        raise ValueError(f"not JSON: {name}")

    return json.loads(raw.decode("utf-8"), parse_constant=refuse)


async def test_non_ascii_reaches_the_provider_as_utf8() -> None:
    text = "héllo 你好 🙂"
    ctx = context(json.dumps(chat_body(text)).encode())  # the client escapes: \u00e9 ...
    assert await build(config()).access(ctx) is None
    assert ctx.upstream.body is not None
    assert text.encode() in ctx.upstream.body
    assert b"\\u" not in ctx.upstream.body
    assert _strict(ctx.upstream.body)["messages"][0]["content"] == text


@pytest.mark.parametrize(
    ("raw", "content"),
    [
        # A lone surrogate escape: Python's json reads it, UTF-8 cannot hold it raw.
        (b'{"messages":[{"role":"user","content":"a \\ud800 b"}]}', "a \ud800 b"),
        # A UTF-8 byte-order mark before the object.
        (b'\xef\xbb\xbf{"messages":[{"role":"user","content":"bom"}]}', "bom"),
    ],
)
async def test_bodies_beyond_strict_json_still_go_through(raw: bytes, content: str) -> None:
    ctx = context(raw)
    assert await build(config()).access(ctx) is None
    assert ctx.upstream.body is not None
    assert _strict(ctx.upstream.body)["messages"][0]["content"] == content


async def test_nan_never_reaches_the_provider() -> None:
    ctx = context(b'{"messages":[{"role":"user","content":"x"}],"temperature":NaN}')
    assert await build(config()).access(ctx) is None
    assert ctx.upstream.body is not None
    assert _strict(ctx.upstream.body)["temperature"] is None


async def test_body_is_rebuilt_per_request_and_target_options_apply_each_time() -> None:
    options = {"max_tokens": 64}
    handler = build(
        config(target(model={"provider": "openai", "name": "gpt-4o", "options": options}))
    )
    first, second = context(chat_body("one", max_tokens=9)), context(chat_body("two", stream=True))
    assert await handler.access(first) is None
    assert await handler.access(second) is None
    assert sent_body(first) == {
        "messages": [{"role": "user", "content": "one"}],
        "max_tokens": 64,
        "model": "gpt-4o",
        "stream": False,
    }
    assert sent_body(second) == {
        "messages": [{"role": "user", "content": "two"}],
        "stream": True,
        "max_tokens": 64,
        "model": "gpt-4o",
    }
    assert (first.upstream.buffer_response, second.upstream.buffer_response) == (True, False)


async def test_fixed_upstream_url_still_follows_the_stream_mode() -> None:
    url = "http://gemini.local:8080/v1beta/models/gemini-pro:generateContent"
    cfg = config(
        target(
            auth={"param_name": "key", "param_value": "g-key", "param_location": "query"},
            model={"provider": "gemini", "name": "gemini-pro", "options": {"upstream_url": url}},
        )
    )
    handler = build(cfg)
    oneshot, streamed = context(chat_body("a")), context(chat_body("b", stream=True))
    assert await handler.access(oneshot) is None
    assert await handler.access(streamed) is None
    assert oneshot.upstream.path == "/v1beta/models/gemini-pro:generateContent"
    assert streamed.upstream.path == "/v1beta/models/gemini-pro:streamGenerateContent"
    for ctx in (oneshot, streamed):
        up = ctx.upstream
        assert (up.scheme, up.host, up.port, up.host_header) == (
            "http",
            "gemini.local",
            8080,
            "gemini.local:8080",
        )
        assert up.query == "key=g-key"
        assert "Authorization" not in ctx.request.headers  # the consumer's key stays here


async def test_provider_version_header_replaces_the_clients() -> None:
    cfg = config(
        target(
            auth={"header_name": "x-api-key", "header_value": "a-key"},
            model={
                "provider": "anthropic",
                "name": "claude-x",
                "options": {"anthropic_version": "2023-06-01"},
            },
        )
    )
    headers = [
        ("Content-Type", "application/json"),
        ("anthropic-version", "1999-01-01"),
        ("Authorization", "Bearer consumer-key"),
    ]
    ctx = context(chat_body(), headers=headers)
    assert await build(cfg).access(ctx) is None
    sent = ctx.request.headers
    assert sent.get_all("anthropic-version") == ["2023-06-01"]
    assert sent.get_all("x-api-key") == ["a-key"]
    assert "Authorization" not in sent


async def test_answer_with_non_ascii_passes_through_and_is_counted() -> None:
    handler = build(config())
    ctx = context(chat_body())
    assert await handler.access(ctx) is None
    answer = json.dumps(
        {
            "model": "gpt-4o-2024",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "Grüße 👋"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7},
        },
        ensure_ascii=False,
    ).encode()
    head, out = respond(handler, ctx, 200, [answer[:20], answer[20:]])
    assert head.status == 200
    assert out == answer
    await handler.log(ctx)
    record = ctx.log_fields["lockgate.llm"]
    assert isinstance(record, dict)
    assert (record["prompt_tokens"], record["completion_tokens"], record["total_tokens"]) == (
        3,
        4,
        7,
    )
    assert record["response_model"] == "gpt-4o-2024"
