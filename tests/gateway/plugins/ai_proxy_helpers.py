"""Builders shared by the ai-proxy-advanced tests: configs, request contexts, handler phases."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from gateway.context import Request, RequestContext, ResponseHead, Upstream
from gateway.credentials import InMemoryCredentials
from gateway.entities import Plugin as PluginEntity
from gateway.headers import Headers
from gateway.plugins.ai_proxy_advanced import PLUGIN, AiProxyAdvancedHandler, Config
from gateway.plugins.base import BuildContext
from gateway.snapshot import Snapshot

PLUGIN_ID = "6a3c6f0e-0000-4000-8000-00000000a1a1"


def target(**overrides: Any) -> dict[str, Any]:
    """A chat target for openai/gpt-4o with header auth; `overrides` replace top-level keys."""
    base: dict[str, Any] = {
        "route_type": "llm/v1/chat",
        "auth": {"header_name": "Authorization", "header_value": "Bearer sk-provider"},
        "model": {"provider": "openai", "name": "gpt-4o"},
    }
    base.update(overrides)
    return base


def config(*targets: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"targets": list(targets) or [target()], **top}


def build(cfg: dict[str, Any], clock: Callable[[], float] | None = None) -> AiProxyAdvancedHandler:
    validated: Config = PLUGIN.validate(cfg)
    if clock is not None:
        return AiProxyAdvancedHandler(validated, PLUGIN_ID, clock)
    entity = PluginEntity(id=PLUGIN_ID, name="ai-proxy-advanced", config=cfg)
    handler = PLUGIN.build(
        validated, BuildContext(Snapshot.create(1), InMemoryCredentials(), entity)
    )
    assert isinstance(handler, AiProxyAdvancedHandler)
    return handler


def chat_body(content: str = "Hello", **fields: Any) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": content}], **fields}


def context(
    body: dict[str, Any] | bytes,
    headers: list[tuple[str, str]] | None = None,
    path: str = "/openai/v1/chat/completions",
    query: str = "",
) -> RequestContext:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    default_headers = [
        ("Host", "proxy.local:8000"),
        ("Content-Type", "application/json"),
        ("Content-Length", str(len(raw))),
        ("Authorization", "Bearer consumer-key"),
    ]
    request = Request(
        method="POST",
        scheme="http",
        host="proxy.local",
        port=8000,
        raw_path=path,
        path=path,
        raw_query=query,
        headers=Headers(default_headers if headers is None else headers),
        body=raw,
        client_ip="127.0.0.1",
    )
    upstream = Upstream(host="service.local", path=path, query=query, method="POST")
    return RequestContext(request=request, upstream=upstream, request_id="req-1")


def sent_body(ctx: RequestContext) -> dict[str, Any]:
    assert ctx.upstream.body is not None
    doc = json.loads(ctx.upstream.body)
    assert isinstance(doc, dict)
    return doc


def respond(
    handler: AiProxyAdvancedHandler,
    ctx: RequestContext,
    status: int,
    chunks: list[bytes],
    headers: list[tuple[str, str]] | None = None,
) -> tuple[ResponseHead, bytes]:
    """Run header_filter and body_filter as the proxy would for an upstream answer."""
    head = ResponseHead(status, Headers(headers or [("Content-Type", "application/json")]))
    ctx.response = head
    handler.header_filter(ctx, head)
    out = b""
    for i, chunk in enumerate(chunks):
        out += handler.body_filter(ctx, chunk, i == len(chunks) - 1)
    return head, out
