"""Incremental server-sent-events parsing of a response body that arrives in arbitrary chunks."""

from __future__ import annotations

from dataclasses import dataclass

MAX_LINE = 1 << 20
"""Longest line kept across chunks; a longer one is dropped rather than buffered forever."""


@dataclass(frozen=True, slots=True)
class SSEEvent:
    data: str
    event: str | None = None
    id: str | None = None


class SSEDecoder:
    """Feed body chunks, get complete events back.

    Lines end with LF (a preceding CR is dropped); a blank line ends an event; `data:` lines of
    one event are joined with LF; comments (`:`) and unknown fields are ignored. A trailing
    incomplete line is kept for the next chunk, like Kong's `truncated_frame`.
    """

    def __init__(self) -> None:
        self._partial = b""
        self._data: list[str] = []
        self._event: str | None = None
        self._id: str | None = None
        self._dropping = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Events completed by `chunk`."""
        lines = (self._partial + chunk).split(b"\n")
        partial = lines.pop()
        events: list[SSEEvent] = []
        for raw in lines:
            if self._dropping:
                # The end of an over-long line: skip it, resume at the next line.
                self._dropping = False
                continue
            self._line(raw.removesuffix(b"\r").decode("utf-8", "replace"), events)
        if len(partial) > MAX_LINE:
            partial, self._dropping = b"", True
        self._partial = partial
        return events

    def close(self) -> list[SSEEvent]:
        """Events still pending at end of body (a last event without its blank line)."""
        events: list[SSEEvent] = []
        if self._partial and not self._dropping:
            self._line(self._partial.removesuffix(b"\r").decode("utf-8", "replace"), events)
        self._partial = b""
        self._line("", events)
        return events

    def _line(self, line: str, events: list[SSEEvent]) -> None:
        if not line:
            if self._data:
                events.append(SSEEvent("\n".join(self._data), self._event, self._id))
            self._data, self._event, self._id = [], None, None
            return
        if line.startswith(":"):
            return
        name, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id":
            self._id = value
