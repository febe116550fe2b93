"""Streamed answers on their way to the client (Kong's `parse-sse-chunk` + `normalize-sse-chunk`).

Each upstream chunk is handled as it arrives, nothing is held back but an incomplete frame:

- OpenAI-format streams (openai, azure, mistral/llama2 `openai`) pass through byte for byte;
  their events are only read to count tokens.
- Other providers' streams (anthropic SSE events, gemini's streamed JSON array, cohere and
  ollama NDJSON, text-generation-inference SSE) are re-framed as OpenAI `data: {chunk}` events
  ending with `data: [DONE]`.

The upstream framing is recognised from the stream's first byte, as Kong does: `[` a JSON array,
`{` newline-delimited JSON, anything else server-sent events.
"""

from __future__ import annotations

import json

from gateway.llm.json_codec import dumps
from gateway.llm.providers.base import Driver, StreamState
from gateway.llm.sse import MAX_LINE, SSEDecoder
from gateway.llm.usage import UsageMeter

DONE = b"data: [DONE]\n\n"


class FrameDecoder:
    """Splits a streamed body into event payloads, whatever the framing (see module doc)."""

    def __init__(self) -> None:
        self._kind: str | None = None
        self._sse = SSEDecoder()
        self._buffer = ""
        self._raw = b""

    def feed(self, chunk: bytes) -> list[str]:
        """Payloads completed by `chunk`."""
        if self._kind is None:
            self._raw += chunk
            head = self._raw.lstrip()
            if not head:
                return []
            self._kind = {ord("["): "array", ord("{"): "ndjson"}.get(head[0], "sse")
            chunk, self._raw = self._raw, b""
        if self._kind == "sse":
            return [event.data for event in self._sse.feed(chunk)]
        self._buffer += chunk.decode("utf-8", "replace")
        if self._kind == "ndjson":
            return self._lines(final=False)
        return self._elements()

    def close(self) -> list[str]:
        """Payloads still pending at the end of the body."""
        if self._kind == "sse":
            return [event.data for event in self._sse.close()]
        if self._kind == "ndjson":
            return self._lines(final=True)
        return []

    def _lines(self, final: bool) -> list[str]:
        lines = self._buffer.split("\n")
        self._buffer = "" if final else lines.pop()
        if len(self._buffer) > MAX_LINE:
            self._buffer = ""  # a runaway line: drop it rather than buffer without bound
        return [line.strip() for line in lines if line.strip()]

    def _elements(self) -> list[str]:
        # One JSON value per array element; an element split across chunks waits for the rest.
        decoder = json.JSONDecoder()
        out: list[str] = []
        text, pos = self._buffer, 0
        while True:
            while pos < len(text) and text[pos] in " \t\r\n,[]":
                pos += 1
            if pos >= len(text):
                break
            try:
                _, end = decoder.raw_decode(text, pos)
            except ValueError:
                break
            out.append(text[pos:end])
            pos = end
        self._buffer = text[pos:]
        if len(self._buffer) > MAX_LINE:
            self._buffer = ""
        return out


class StreamTranslator:
    """One streamed answer: `feed(chunk, eof)` returns the bytes to send the client for it,
    and records text, usage and the answering model on `meter`."""

    def __init__(
        self,
        driver: Driver,
        route_type: str,
        meter: UsageMeter,
        model: str,
        *,
        include_usage: bool = False,
    ) -> None:
        self._driver = driver
        self._route_type = route_type
        self._meter = meter
        self._include_usage = include_usage
        self._frames = FrameDecoder()
        self._state = StreamState(model=model)
        self._done = False

    @property
    def reframes(self) -> bool:
        return self._driver.reframes_stream

    def feed(self, chunk: bytes, eof: bool) -> bytes:
        payloads = self._frames.feed(chunk) if chunk else []
        if eof:
            payloads += self._frames.close()
        out: list[bytes] = []
        for payload in payloads:
            if self._done:
                break
            event = self._driver.stream_event(payload, self._route_type, self._state)
            self._meter.add_text(event.content)
            if event.usage is not None:
                self._meter.add_usage(event.usage)
            if event.model is not None:
                self._meter.response_model = event.model
            for item in event.chunks:
                out.append(b"data: " + dumps(item) + b"\n\n")
            if event.done and self.reframes:
                out.append(self._finish())
        if eof and self.reframes and not self._done:
            out.append(self._finish())
        if not self.reframes:
            return chunk
        return b"".join(out)

    def _finish(self) -> bytes:
        self._done = True
        if not self._include_usage:
            return DONE
        prompt, completion, total = self._meter.counts()
        usage_chunk = {
            "id": self._state.id,
            "object": "chat.completion.chunk",
            "created": self._state.created,
            "model": self._state.model,
            "choices": [],
            "usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": total,
            },
        }
        return b"data: " + dumps(usage_chunk) + b"\n\n" + DONE
