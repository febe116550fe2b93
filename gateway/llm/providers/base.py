"""The provider driver contract (Kong's `kong/llm/drivers/<provider>.lua`).

A driver knows one provider's wire format: its default endpoint per route type, the headers and
query arguments the provider always needs, how to turn a normalized (OpenAI-format) request into
the provider's request, and how to read the provider's answer back into OpenAI's format, either
buffered or one streamed event at a time. It holds no per-request state and does no I/O: a
stream's memory lives in a `StreamState` the caller owns.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

from gateway.llm import json_codec

if TYPE_CHECKING:
    from gateway.llm.schema import ModelOptions


class TransformError(Exception):
    """The provider's answer could not be read; the message is Kong's `<reason>` text."""


@dataclass(frozen=True, slots=True)
class UpstreamURL:
    scheme: str
    host: str
    port: int
    path: str


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """Token counts a provider reported; None where it reported nothing."""

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None


@dataclass(frozen=True, slots=True)
class StreamEvent:
    """What one streamed event says.

    `content` is the answer text it adds, `usage` and `model` what it reports, `done` whether
    it ends the stream. `chunks` are the OpenAI `chat.completion.chunk` (or `text_completion`)
    objects to send the client in its place; drivers whose stream already is OpenAI's leave
    it empty and the bytes pass through unchanged.
    """

    content: str = ""
    usage: TokenUsage | None = None
    model: str | None = None
    done: bool = False
    chunks: tuple[dict[str, Any], ...] = ()


@dataclass(slots=True)
class StreamState:
    """What a re-framing driver remembers between the events of one stream."""

    model: str
    """The model in use: the `model` of every chunk sent."""
    id: str = ""
    created: int = field(default_factory=lambda: int(time.time()))
    role_sent: bool = False
    tool_calls: dict[int, int] = field(default_factory=dict)
    """Provider content-block index -> OpenAI tool-call index."""
    usage: dict[str, int] = field(default_factory=dict)

    def chunk(
        self,
        delta: dict[str, Any],
        finish_reason: str | None = None,
        *,
        chat: bool = True,
    ) -> dict[str, Any]:
        """One OpenAI stream chunk with this stream's id, creation time and model."""
        if chat:
            choice: dict[str, Any] = {
                "index": 0,
                "delta": delta,
                "logprobs": None,
                "finish_reason": finish_reason,
            }
            kind, prefix = "chat.completion.chunk", "chatcmpl-"
        else:
            choice = {
                "index": 0,
                "text": delta.get("content") or "",
                "logprobs": None,
                "finish_reason": finish_reason,
            }
            kind, prefix = "text_completion", "cmpl-"
        if not self.id:
            self.id = prefix + f"{time.time_ns():x}"
        return {
            "id": self.id,
            "object": kind,
            "created": self.created,
            "model": self.model,
            "choices": [choice],
        }

    def text_delta(self, text: str, *, chat: bool = True) -> dict[str, Any]:
        """A chunk adding `text`; the first one of a chat stream also carries the role."""
        delta: dict[str, Any] = {"content": text}
        if chat and not self.role_sent:
            delta["role"] = "assistant"
            self.role_sent = True
        return self.chunk(delta, chat=chat)


@dataclass(frozen=True, slots=True)
class ParsedResponse:
    """A buffered 200 answer read by a driver: the body for the client and what it reports."""

    body: bytes
    usage: TokenUsage
    model: str | None


class Driver(ABC):
    name: ClassVar[str]
    clear_response_headers: ClassVar[tuple[str, ...]] = ()
    """Upstream response headers removed from successful answers."""
    reframes_stream: ClassVar[bool] = True
    """Whether streamed answers are re-framed as OpenAI chunks (False: passed through)."""
    route_types: ClassVar[frozenset[str]] = frozenset({"llm/v1/chat", "preserve"})
    """The route types this driver can transform."""

    @abstractmethod
    def default_url(
        self, route_type: str, model: str, options: ModelOptions, stream: bool
    ) -> UpstreamURL | None:
        """The provider's endpoint for `route_type`, or None if the driver has no default
        (then `options.upstream_url` is required)."""

    def upstream_path(self, path: str, stream: bool) -> str:
        """The path to use when `options.upstream_url` gives `path` (default: verbatim)."""
        return path

    def request_headers(self, options: ModelOptions) -> tuple[tuple[str, str], ...]:
        """Headers the provider always needs (e.g. a version), set on every upstream request
        after the credentials, so they override a client's value."""
        return ()

    def configure(self, options: ModelOptions, query: str) -> str:
        """Add the query arguments the provider always needs; returns the new query string.
        Runs after auth, so it can override a client's value."""
        return query

    @abstractmethod
    def to_format(self, body: dict[str, Any], model: str, route_type: str) -> dict[str, Any]:
        """The provider request for a normalized OpenAI-format `body` (options merged).
        `body` may be the client's parsed body, kept for retries: it must not be changed."""

    @abstractmethod
    def from_format(self, body: bytes, route_type: str, model: str = "") -> ParsedResponse:
        """Read a buffered 200 answer into OpenAI's format; raise TransformError with Kong's
        reason if unusable. `model` is the model in use, for answers that do not name it."""

    @abstractmethod
    def stream_event(
        self, data: str, route_type: str, state: StreamState | None = None
    ) -> StreamEvent:
        """Read one streamed event (an SSE `data:` payload, one NDJSON line or one element
        of a streamed JSON array)."""


def json_object(data: bytes | str) -> dict[str, Any] | None:
    """`data` parsed as a JSON object, or None."""
    return json_codec.object_of(data)


def count(value: object) -> int | None:
    """A token count: a non-negative int (not a bool), else None."""
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    return None


def encode(doc: dict[str, Any]) -> bytes:
    return json_codec.dumps(doc)


def openai_answer(
    ident: str,
    kind: str,
    created: int,
    model: str | None,
    choices: list[dict[str, Any]],
    usage: TokenUsage,
) -> bytes:
    """A buffered answer in OpenAI's format (`chat.completion` or `text_completion`) with the
    reported usage, 0 for counts the provider left out."""
    return encode(
        {
            "id": ident,
            "object": kind,
            "created": created,
            "model": model,
            "choices": choices,
            "usage": {
                "prompt_tokens": usage.prompt_tokens or 0,
                "completion_tokens": usage.completion_tokens or 0,
                "total_tokens": usage.total_tokens or 0,
            },
        }
    )


def text_of(content: object) -> str:
    """The text of an OpenAI message `content`: a string, or the `text` parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [p.get("text") for p in content if isinstance(p, dict)]
        return "".join(p for p in parts if isinstance(p, str))
    return ""


def usage_total(prompt: int | None, completion: int | None) -> TokenUsage:
    total = prompt + completion if prompt is not None and completion is not None else None
    return TokenUsage(prompt, completion, total)
