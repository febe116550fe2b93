"""The provider driver contract (Kong's `kong/llm/drivers/<provider>.lua`).

A driver knows one provider's wire format: its default endpoint per route type, how to turn a
normalized (OpenAI-format) request into the provider's request, how to read the provider's
answer back (buffered JSON or one SSE event) and which response headers to drop. It holds no
per-request state and does no I/O: the plugin owns the request context.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

from gateway.headers import Headers


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
    """What one SSE `data:` payload says: text delta, usage and model, each possibly empty."""

    content: str = ""
    usage: TokenUsage | None = None
    model: str | None = None
    done: bool = False


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

    @abstractmethod
    def default_url(self, route_type: str, model: str) -> UpstreamURL | None:
        """The provider's endpoint for `route_type`, or None if the driver has no default
        (then `options.upstream_url` is required)."""

    def prepare_headers(self, headers: Headers) -> None:  # noqa: B027 (optional hook)
        """Adjust the upstream request headers (Kong's `pre_request`); default: nothing."""

    @abstractmethod
    def to_format(self, body: dict[str, Any], model: str, route_type: str) -> dict[str, Any]:
        """The provider request for a normalized OpenAI-format `body` (options merged)."""

    @abstractmethod
    def from_format(self, body: bytes, route_type: str) -> ParsedResponse:
        """Read a buffered 200 answer; raise TransformError with Kong's reason if unusable."""

    @abstractmethod
    def stream_event(self, data: str, route_type: str) -> StreamEvent:
        """Read the payload of one SSE `data:` line of a streamed answer."""
