"""Streamed answers: framing recognition and re-framing, one upstream chunk at a time."""

from __future__ import annotations

import json

from gateway.llm.providers import driver_for
from gateway.llm.stream import DONE, FrameDecoder, StreamTranslator
from gateway.llm.usage import UsageMeter


def _bytewise(decoder: FrameDecoder, data: bytes) -> list[str]:
    out: list[str] = []
    for i in range(len(data)):
        out += decoder.feed(data[i : i + 1])
    return out + decoder.close()


def test_frames_are_recognised_and_survive_any_split() -> None:
    sse = b'event: a\ndata: {"x":1}\n\n: keepalive\ndata: {"x":2}\n\n'
    ndjson = b'{"x":1}\n\n{"x":2}\n'
    array = b'[{"x": 1,\n "s": "a]b,c"}\n,\r\n{"x": 2}\n]'
    for data in (sse, ndjson, array, b"  \n" + array):
        assert [json.loads(p)["x"] for p in _bytewise(FrameDecoder(), data)] == [1, 2]


def test_last_ndjson_line_without_newline_is_flushed_at_close() -> None:
    decoder = FrameDecoder()
    assert decoder.feed(b'{"x":1}\n{"x":') == ['{"x":1}']
    assert decoder.feed(b"2}") == []
    assert decoder.close() == ['{"x":2}']


def _meter() -> UsageMeter:
    return UsageMeter(provider="anthropic", request_model="claude", started=0.0, stream=True)


def _events(*docs: dict[str, object]) -> list[bytes]:
    return [f"event: {d['type']}\ndata: {json.dumps(d)}\n\n".encode() for d in docs]


ANTHROPIC = _events(
    {
        "type": "message_start",
        "message": {"id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 9}},
    },
    {"type": "ping"},
    {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
    {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}},
    {
        "type": "message_delta",
        "delta": {"stop_reason": "max_tokens"},
        "usage": {"output_tokens": 1},
    },
    {"type": "message_stop"},
)


def test_each_event_is_reframed_as_soon_as_it_is_complete() -> None:
    meter = _meter()
    stream = StreamTranslator(driver_for("anthropic"), "llm/v1/chat", meter, "claude")
    outputs = [stream.feed(chunk, False) for chunk in ANTHROPIC]
    assert outputs[1] == b""  # ping: nothing to say
    assert outputs[-1] == DONE
    chunks = [json.loads(o.removeprefix(b"data: ")) for o in (outputs[0], outputs[3], outputs[4])]
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    assert chunks[1]["choices"][0]["delta"] == {"content": "Hi"}
    assert chunks[2]["choices"][0]["finish_reason"] == "length"
    assert {c["id"] for c in chunks} == {"msg_1"}
    assert {c["model"] for c in chunks} == {"claude"}
    assert stream.feed(b"", True) == b""  # [DONE] is sent once
    assert (meter.counts(), meter.response_model, meter.text) == ((9, 1, 10), "claude-x", "Hi")


def test_a_half_event_waits_for_its_end() -> None:
    stream = StreamTranslator(driver_for("anthropic"), "llm/v1/chat", _meter(), "claude")
    event = ANTHROPIC[3]
    assert stream.feed(event[:20], False) == b""
    assert b'"content":"Hi"' in stream.feed(event[20:], False)


def test_done_is_added_when_the_provider_just_stops_and_usage_when_asked() -> None:
    meter = _meter()
    meter.prompt_tokens_estimate = 3
    stream = StreamTranslator(
        driver_for("anthropic"), "llm/v1/chat", meter, "claude", include_usage=True
    )
    out = stream.feed(ANTHROPIC[3], False) + stream.feed(b"", True)
    events = out.decode().strip().split("\n\n")
    assert events[-1] == "data: [DONE]"
    final = json.loads(events[-2].removeprefix("data: "))
    # No usage events: Kong's estimates (prompt from the request, completion chars / 4).
    assert final["choices"] == [] and final["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": 1,
        "total_tokens": 4,
    }


def test_openai_streams_pass_through_byte_for_byte() -> None:
    meter = UsageMeter(provider="openai", request_model="gpt", started=0.0, stream=True)
    stream = StreamTranslator(driver_for("openai"), "llm/v1/chat", meter, "gpt")
    data = (
        b'data: {"model":"gpt-4o-1","choices":[{"delta":{"content":"Hel"}}]}\n\n'
        b'data: {"choices":[{"delta":{"content":"lo"}}],"usage":{"prompt_tokens":2,'
        b'"completion_tokens":1,"total_tokens":3}}\n\ndata: [DONE]\n\n'
    )
    out = b"".join(stream.feed(data[i : i + 7], False) for i in range(0, len(data), 7))
    assert out + stream.feed(b"", True) == data
    assert (meter.text, meter.counts(), meter.response_model) == ("Hello", (2, 1, 3), "gpt-4o-1")


def test_a_mid_stream_provider_error_reaches_the_client_as_an_error_event() -> None:
    stream = StreamTranslator(driver_for("anthropic"), "llm/v1/chat", _meter(), "claude")
    [error] = _events({"type": "error", "error": {"type": "overloaded_error", "message": "busy"}})
    out = stream.feed(error, False)
    assert json.loads(out.removeprefix(b"data: ")) == {
        "error": {"type": "overloaded_error", "message": "busy"}
    }
