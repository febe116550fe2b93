"""Request introspection and normalization (Kong's `parse-request` + `normalize-request` filters).

`normalize_request` applies Kong's checks in Kong's order and returns the provider request, or
raises `LLMRequestError` carrying the status and the exact message Kong answers with in
`{"error":{"message":...}}`.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any, Literal

from gateway.llm.providers.base import Driver
from gateway.llm.schema import Target

ResponseStreaming = Literal["allow", "deny", "always"]

INVALID_PROMPTS = "request body doesn't contain valid prompts"
MODEL_NOT_FOUND = "model parameter not found in request, nor in gateway configuration"
MULTIPLE_FORMATS = "request matches multiple LLM request formats"
FORMAT_NOT_RECOGNISED = "request format not recognised"
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
        doc = json.loads(raw)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def normalize_request(
    body: dict[str, Any] | None,
    target: Target,
    driver: Driver,
    response_streaming: ResponseStreaming,
) -> LLMRequest:
    """Validate the parsed client body against `target` and build the provider request."""
    preserve = target.route_type == "preserve"
    if not preserve and (body is None or not _has_prompts(body)):
        raise LLMRequestError(400, INVALID_PROMPTS)

    model = _model_in_use(body, target)
    if model is None and not preserve:
        raise LLMRequestError(400, MODEL_NOT_FOUND)

    if not preserve:
        assert body is not None  # checked by _has_prompts above
        request_format = _identify_format(body)
        if request_format != target.route_type:
            raise LLMRequestError(
                400,
                f"[{request_format}] message format is not compatible with "
                f"[{target.route_type}] route type",
            )

    stream = False
    streams = (
        body is not None and _lua_truthy(body.get("stream"))
    ) or response_streaming == "always"
    if streams and target.route_type != "llm/v1/embeddings":
        if response_streaming == "deny":
            raise LLMRequestError(400, STREAMING_DENIED)
        stream = True

    if preserve or body is None:
        return LLMRequest(None, model, stream, 0)

    assert model is not None
    merged = dict(body)
    if stream:
        merged["stream"] = True
    options = target.model.options
    if target.route_type != "llm/v1/embeddings":
        for name in _MERGED_OPTIONS:
            value = getattr(options, name)
            if value is not None:
                merged[name] = value
    try:
        out = driver.to_format(merged, model, target.route_type)
    except (ValueError, TypeError, KeyError) as exc:
        raise LLMRequestError(
            400, f"error transforming to {driver.name}://{target.route_type}"
        ) from exc
    auth = target.auth
    if auth is not None and auth.uses_param and auth.param_location == "body":
        assert auth.param_name is not None
        if not (auth.allow_override and auth.param_name in out):
            out[auth.param_name] = auth.param_value
    stream_options = body.get("stream_options")
    include_usage = isinstance(stream_options, dict) and stream_options.get("include_usage") is True
    return LLMRequest(out, model, stream, estimate_prompt_tokens(body, stream), include_usage)


def _has_prompts(body: dict[str, Any]) -> bool:
    messages = body.get("messages")
    return (
        (isinstance(messages, list) and len(messages) > 0)
        or isinstance(body.get("prompt"), str)
        or _has_input(body)
    )


def _has_input(body: dict[str, Any]) -> bool:
    # Embeddings input: a string, or a non-empty list (of strings or token arrays).
    value = body.get("input")
    return isinstance(value, str) or (isinstance(value, list) and len(value) > 0)


def _identify_format(body: dict[str, Any]) -> str:
    formats = []
    messages = body.get("messages")
    if isinstance(messages, list) and messages:
        formats.append("llm/v1/chat")
    if isinstance(body.get("prompt"), str):
        formats.append("llm/v1/completions")
    if not formats and _has_input(body):
        # `input` only identifies embeddings on its own: chat/completion bodies never carry it.
        formats.append("llm/v1/embeddings")
    if len(formats) > 1:
        raise LLMRequestError(400, MULTIPLE_FORMATS)
    if not formats:
        raise LLMRequestError(400, FORMAT_NOT_RECOGNISED)
    return formats[0]


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
