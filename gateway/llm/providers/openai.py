"""The OpenAI driver. Lockgate's normalized format *is* OpenAI's, so requests pass through with
the model pinned and answers pass through unchanged once checked (Kong's `drivers/openai.lua`)."""

from __future__ import annotations

import json
from typing import Any

from gateway.headers import Headers
from gateway.llm.providers.base import (
    Driver,
    ParsedResponse,
    StreamEvent,
    TokenUsage,
    TransformError,
    UpstreamURL,
)

_HOST = "api.openai.com"
_PATHS = {"llm/v1/chat": "/v1/chat/completions", "llm/v1/completions": "/v1/completions"}


class OpenAIDriver(Driver):
    name = "openai"
    clear_response_headers = ("Set-Cookie",)

    def default_url(self, route_type: str, model: str) -> UpstreamURL:
        return UpstreamURL("https", _HOST, 443, _PATHS.get(route_type, "/"))

    def prepare_headers(self, headers: Headers) -> None:
        # Kong asks for "gzip, identity" and gunzips to read usage. Asking for identity means the
        # proxy never decompresses: the body it buffers or streams is the body it can parse.
        headers.set("Accept-Encoding", "identity")

    def to_format(self, body: dict[str, Any], model: str, route_type: str) -> dict[str, Any]:
        out = dict(body)
        out["model"] = model
        out["stream"] = out.get("stream") or False
        # OpenAI rejects unknown arguments, and it has no top_k.
        out.pop("top_k", None)
        return out

    def from_format(self, body: bytes, route_type: str) -> ParsedResponse:
        doc = _json_object(body)
        if route_type == "preserve":
            # Preserve mode forwards any operation's answer untouched; read usage if present.
            doc = doc or {}
        elif doc is None or "choices" not in doc:
            raise TransformError(f"'choices' not in {route_type} response")
        model = doc.get("model")
        return ParsedResponse(body, usage_of(doc), model if isinstance(model, str) else None)

    def stream_event(self, data: str, route_type: str) -> StreamEvent:
        if data.strip() == "[DONE]":
            return StreamEvent(done=True)
        doc = _json_object(data.encode())
        if doc is None:
            return StreamEvent()
        texts: list[str] = []
        choices = doc.get("choices")
        for choice in choices if isinstance(choices, list) else ():
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            text = delta.get("content") if isinstance(delta, dict) else choice.get("text")
            if isinstance(text, str):
                texts.append(text)
        usage = usage_of(doc) if isinstance(doc.get("usage"), dict) else None
        model = doc.get("model")
        return StreamEvent("".join(texts), usage, model if isinstance(model, str) else None)


def usage_of(doc: dict[str, Any]) -> TokenUsage:
    """The `usage` object of an OpenAI-format answer (empty counts if absent or malformed)."""
    usage = doc.get("usage")
    if not isinstance(usage, dict):
        return TokenUsage()
    return TokenUsage(
        _count(usage.get("prompt_tokens")),
        _count(usage.get("completion_tokens")),
        _count(usage.get("total_tokens")),
    )


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _json_object(data: bytes) -> dict[str, Any] | None:
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None
