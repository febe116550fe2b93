"""Request introspection and normalization (Kong's `parse-request` + `normalize-request` filters).

`normalize_request` applies Kong's checks in Kong's order and returns the provider request, or
raises `LLMRequestError` carrying the status and the exact message Kong answers with in
`{"error":{"message":...}}`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

from gateway.llm.json_codec import loads
from gateway.llm.providers.base import Driver
from gateway.llm.schema import Target

ResponseStreaming = Literal["allow", "deny", "always"]

INVALID_PROMPTS = "request body doesn't contain valid prompts"
MODEL_NOT_FOUND = "model parameter not found in request, nor in gateway configuration"
MULTIPLE_FORMATS = "request matches multiple LLM request formats"
STREAMING_DENIED = "response streaming is not enabled for this LLM"

# The options Kong merges into the request; OSS >= 3.8 lets the configured value win.
_MERGED_OPTIONS = ("max_tokens", "temperature", "top_p", "top_k")


class LLMRequestError(Exception):
    """The client's request cannot be proxied; answer `status` with `message`."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True, slots=True)
class LLMRequest:
    """A normalized request ready to send.

    `body` is the provider request, or None in preserve mode when the client's body must be
    forwarded byte for byte. `model` is the model in use (None only in preserve mode).
    """

    body: dict[str, Any] | None
    model: str | None
    stream: bool
    prompt_tokens_estimate: int
    include_usage: bool = False
    """The client asked for a final usage chunk (`stream_options.include_usage`)."""


def parse_body(raw: bytes, content_type: str | None, max_size: int) -> dict[str, Any] | None:
    """The client's JSON object body, or None when Kong's `get_body` would give nothing:
    a non-JSON content type, a body over `max_size` bytes (0 = unlimited), bad JSON, or a
    JSON value that is not an object."""
    if content_type is not None and "application/json" not in content_type.lower():
        return None
    if max_size > 0 and len(raw) > max_size:
        return None
    try:
        doc = loads(raw)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def normalize_request(
    body: dict[str, Any] | None,
    target: Target,
    driver: Driver,
    response_streaming: ResponseStreaming,
    merged_options: tuple[tuple[str, Any], ...] | None = None,
) -> LLMRequest:
    """Validate the parsed client body against `target` and build the provider request.

    `merged_options` is `options_to_merge(target)`, for a caller that keeps it per target."""
    route_type = target.route_type
    preserve = route_type == "preserve"
    chat = completion = False
    if not preserve:
        if body is None:
            raise LLMRequestError(400, INVALID_PROMPTS)
        messages = body.get("messages")
        chat = isinstance(messages, list) and len(messages) > 0
        completion = isinstance(body.get("prompt"), str)
        if not (chat or completion or _has_input(body)):
            raise LLMRequestError(400, INVALID_PROMPTS)

    model = _model_in_use(body, target)
    if model is None and not preserve:
        raise LLMRequestError(400, MODEL_NOT_FOUND)

    if not preserve:
        if chat and completion:
            raise LLMRequestError(400, MULTIPLE_FORMATS)
        # `input` only identifies embeddings on its own: chat/completion bodies never carry it.
        request_format = (
            "llm/v1/chat" if chat else "llm/v1/completions" if completion else "llm/v1/embeddings"
        )
        if request_format != route_type:
            raise LLMRequestError(
                400,
                f"[{request_format}] message format is not compatible with "
                f"[{route_type}] route type",
            )

    stream = False
    streams = (
        body is not None and _lua_truthy(body.get("stream"))
    ) or response_streaming == "always"
    if streams and route_type != "llm/v1/embeddings":
        if response_streaming == "deny":
            raise LLMRequestError(400, STREAMING_DENIED)
        stream = True

    if preserve or body is None:
        return LLMRequest(None, model, stream, 0)

    assert model is not None
    if merged_options is None:
        merged_options = options_to_merge(target)
    merged = body
    if stream or merged_options:
        merged = dict(body)  # the drivers copy what they keep, so only a changed body is copied
        if stream:
            merged["stream"] = True
        for name, value in merged_options:
            merged[name] = value
    try:
        out = driver.to_format(merged, model, route_type)
    except (ValueError, TypeError, KeyError) as exc:
        raise LLMRequestError(400, f"error transforming to {driver.name}://{route_type}") from exc
    auth = target.auth
    if auth is not None and auth.uses_param and auth.param_location == "body":
        assert auth.param_name is not None
        if not (auth.allow_override and auth.param_name in out):
            out[auth.param_name] = auth.param_value
    if not stream:
        # The estimate only stands in for a stream's missing usage (`UsageMeter.counts`).
        return LLMRequest(out, model, False, 0)
    stream_options = body.get("stream_options")
    include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    return LLMRequest(out, model, True, estimate_prompt_tokens(body, True), include_usage)


def options_to_merge(target: Target) -> tuple[tuple[str, Any], ...]:
    """The `model.options` values that replace the request's (none for embeddings)."""
    if target.route_type == "llm/v1/embeddings":
        return ()
    options = target.model.options
    values = ((name, getattr(options, name)) for name in _MERGED_OPTIONS)
    return tuple((name, value) for name, value in values if value is not None)


def _has_input(body: dict[str, Any]) -> bool:
    # Embeddings input: a string, or a non-empty list (of strings or token arrays).
    value = body.get("input")
    return isinstance(value, str) or (isinstance(value, list) and len(value) > 0)


def _model_in_use(body: dict[str, Any] | None, target: Target) -> str | None:
    requested = body.get("model") if body is not None else None
    requested = requested if isinstance(requested, str) and requested else None
    configured = target.model.name
    if configured is None:
        return requested
    if requested is not None and requested != configured:
        raise LLMRequestError(400, f"cannot use own model - must be: {configured}")
    return configured


def _lua_truthy(value: object) -> bool:
    # Kong tests `request.stream` with Lua truthiness: anything but nil/false streams, even 0
    # or "". JSON null is the exception here: cjson makes it a truthy sentinel, but a client
    # sending `"stream": null` means "no stream", so it does not stream.
    return value is not None and value is not False


def estimate_prompt_tokens(body: dict[str, Any], stream: bool) -> int:
    """Kong's prompt-token estimate for providers that may not report usage: the number of
    words in the prompt, times 1.8 when streaming, rounded half up."""
    words = 0
    messages = body.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict):
                words += _words(message.get("content"))
    elif "prompt" in body:
        words += _words(body.get("prompt"))
    else:
        words += _words(body.get("input"))
    return math.floor(words * (1.8 if stream else 1.0) + 0.5)


def _words(content: object) -> int:
    if isinstance(content, str):
        return len(content.split())
    if isinstance(content, list):
        return sum(_words(part) for part in content)
    if isinstance(content, dict) and isinstance(content.get("text"), str):
        return len(content["text"].split())
    return 0
