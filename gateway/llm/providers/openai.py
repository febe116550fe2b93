"""The OpenAI driver. Lockgate's normalized format *is* OpenAI's, so requests pass through with
the model pinned and answers pass through unchanged once checked (Kong's `drivers/openai.lua`).
Azure, and mistral / llama2 in their `openai` format, reuse it with other endpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from gateway.llm.providers.base import (
    Driver,
    ParsedResponse,
    StreamEvent,
    StreamState,
    TokenUsage,
    TransformError,
    UpstreamURL,
    count,
    json_object,
)

if TYPE_CHECKING:
    from gateway.llm.schema import ModelOptions

_HOST = "api.openai.com"
PATHS = {
    "llm/v1/chat": "/v1/chat/completions",
    "llm/v1/completions": "/v1/completions",
    "llm/v1/embeddings": "/v1/embeddings",
}
_REQUIRED = {"llm/v1/chat": "choices", "llm/v1/completions": "choices", "llm/v1/embeddings": "data"}


class OpenAIDriver(Driver):
    name = "openai"
    clear_response_headers = ("Set-Cookie",)
    reframes_stream = False
    route_types = frozenset({"llm/v1/chat", "llm/v1/completions", "llm/v1/embeddings", "preserve"})

    def default_url(
        self, route_type: str, model: str, options: ModelOptions, stream: bool
    ) -> UpstreamURL | None:
        return UpstreamURL("https", _HOST, 443, PATHS.get(route_type, "/"))

    def to_format(self, body: dict[str, Any], model: str, route_type: str) -> dict[str, Any]:
        out = dict(body)
        out["model"] = model
        if route_type == "llm/v1/embeddings":
            out.pop("stream", None)
        else:
            out["stream"] = out.get("stream") or False
        # OpenAI rejects unknown arguments, and it has no top_k.
        out.pop("top_k", None)
        return out

    def from_format(self, body: bytes, route_type: str, model: str = "") -> ParsedResponse:
        doc = json_object(body)
        required = _REQUIRED.get(route_type)
        if required is None:
            # Preserve mode forwards any operation's answer untouched; read usage if present.
            doc = doc or {}
        elif doc is None or required not in doc:
            raise TransformError(f"'{required}' not in {route_type} response")
        answered = doc.get("model")
        return ParsedResponse(body, usage_of(doc), answered if isinstance(answered, str) else None)

    def stream_event(
        self, data: str, route_type: str, state: StreamState | None = None
    ) -> StreamEvent:
        if data.strip() == "[DONE]":
            return StreamEvent(done=True)
        doc = json_object(data)
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
        answered = doc.get("model")
        return StreamEvent("".join(texts), usage, answered if isinstance(answered, str) else None)


def usage_of(doc: dict[str, Any]) -> TokenUsage:
    """The `usage` object of an OpenAI-format answer (empty counts if absent or malformed)."""
    usage = doc.get("usage")
    if not isinstance(usage, dict):
        return TokenUsage()
    return TokenUsage(
        count(usage.get("prompt_tokens")),
        count(usage.get("completion_tokens")),
        count(usage.get("total_tokens")),
    )
