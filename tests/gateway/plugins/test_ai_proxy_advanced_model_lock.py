"""The model lock holds whatever content type the client declares, and every attempt's auth
follows the injection rules (the client's Authorization never reaches a provider)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.gateway.plugins.ai_proxy_helpers import build, config, context, target

LOCKED = {"provider": "openai", "name": "gpt-4o"}
REFUSED = {"error": {"message": "cannot use own model - must be: gpt-4o"}}


def _headers(content_type: str, body: bytes) -> list[tuple[str, str]]:
    return [
        ("Host", "proxy.local"),
        ("Content-Type", content_type),
        ("Content-Length", str(len(body))),
        ("Authorization", "Bearer consumer-key"),
    ]


OTHER_MODEL_BODIES = [
    ("text/plain", json.dumps({"model": "gpt-4o-mini", "input": "x"}).encode()),
    ("application/x-www-form-urlencoded", b"input=x&model=gpt-4o-mini"),
    (
        "multipart/form-data; boundary=XyZ",
        b'--XyZ\r\nContent-Disposition: form-data; name="model"\r\n\r\ngpt-4o-mini\r\n'
        b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.wav"\r\n'
        b"Content-Type: audio/wav\r\n\r\nRIFF\r\n--XyZ--\r\n",
    ),
    ("", json.dumps({"model": "gpt-4o-mini"}).encode()),
]


@pytest.mark.parametrize(("content_type", "body"), OTHER_MODEL_BODIES)
async def test_preserve_mode_refuses_another_model_in_any_content_type(
    content_type: str, body: bytes
) -> None:
    handler = build(config(target(route_type="preserve", model=LOCKED)))
    ctx = context(body, headers=_headers(content_type, body), path="/v1/audio/transcriptions")
    exit_ = await handler.access(ctx)
    assert exit_ is not None and exit_.status == 400
    assert json.loads(exit_.body) == REFUSED


async def test_oversized_json_cannot_slip_another_model_through_preserve_mode() -> None:
    body = json.dumps({"model": "gpt-4o-mini", "pad": "x" * 200}).encode()
    cfg = config(target(route_type="preserve", model=LOCKED), max_request_body_size=64)
    exit_ = await build(cfg).access(context(body, headers=_headers("application/json", body)))
    assert exit_ is not None and json.loads(exit_.body) == REFUSED


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/plain", json.dumps({"model": "gpt-4o", "input": "x"}).encode()),
        ("application/x-www-form-urlencoded", b"input=x"),
        ("application/octet-stream", b"\x00\x01binary"),
    ],
)
async def test_preserve_mode_forwards_same_model_or_modelless_bodies(
    content_type: str, body: bytes
) -> None:
    handler = build(config(target(route_type="preserve", model=LOCKED)))
    ctx = context(body, headers=_headers(content_type, body), path="/v1/files")
    assert await handler.access(ctx) is None
    assert ctx.upstream.body is None  # forwarded byte for byte
    assert "consumer-key" not in (ctx.request.headers.get("Authorization") or "")


async def test_chat_route_refuses_non_json_bodies_whatever_their_model() -> None:
    body = json.dumps({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "x"}]})
    raw = body.encode()
    exit_ = await build(config(target(model=LOCKED))).access(
        context(raw, headers=_headers("text/plain", raw))
    )
    assert exit_ is not None and exit_.status == 400
    assert json.loads(exit_.body) == {
        "error": {"message": "request body doesn't contain valid prompts"}
    }


async def test_unlocked_target_lets_any_content_type_through_in_preserve_mode() -> None:
    body = b"input=x&model=whatever"
    handler = build(config(target(route_type="preserve", model={"provider": "openai"})))
    ctx = context(body, headers=_headers("application/x-www-form-urlencoded", body))
    assert await handler.access(ctx) is None


def _with_override(header: str, allow: bool) -> dict[str, Any]:
    return target(auth={"header_name": header, "header_value": "sk-up", "allow_override": allow})


async def test_client_authorization_is_replaced_unless_allow_override() -> None:
    body = {"messages": [{"role": "user", "content": "x"}]}
    ctx = context(body)
    assert await build(config(_with_override("Authorization", False))).access(ctx) is None
    assert ctx.request.headers.get_all("Authorization") == ["sk-up"]
    ctx = context(body)
    assert await build(config(_with_override("Authorization", True))).access(ctx) is None
    assert ctx.request.headers.get_all("Authorization") == ["Bearer consumer-key"]
    ctx = context(body)
    assert await build(config(_with_override("api-key", True))).access(ctx) is None
    assert "Authorization" not in ctx.request.headers  # a gateway credential, not the provider's
