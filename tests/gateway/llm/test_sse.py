from __future__ import annotations

import pytest

from gateway.llm import sse
from gateway.llm.sse import SSEDecoder, SSEEvent


def test_events_split_across_chunks() -> None:
    decoder = SSEDecoder()
    stream = (
        b'data: {"a":1}\n\nevent: ping\nid: 7\ndata: x\ndata: y\r\n\r\n: comment\ndata: [DONE]\n\n'
    )
    events: list[SSEEvent] = []
    for i in range(len(stream)):  # one byte at a time
        events += decoder.feed(stream[i : i + 1])
    events += decoder.close()
    assert events == [
        SSEEvent('{"a":1}'),
        SSEEvent("x\ny", event="ping", id="7"),
        SSEEvent("[DONE]"),
    ]


def test_last_event_without_blank_line_is_flushed_on_close() -> None:
    decoder = SSEDecoder()
    assert decoder.feed(b"data: a\n\ndata: b") == [SSEEvent("a")]
    assert decoder.close() == [SSEEvent("b")]


def test_over_long_line_is_dropped_not_buffered(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sse, "MAX_LINE", 10)
    decoder = SSEDecoder()
    assert decoder.feed(b"data: ok\n\ndata: " + b"x" * 20) == [SSEEvent("ok")]
    assert decoder.feed(b"yyy\n\ndata: next\n\n") == [SSEEvent("next")]
