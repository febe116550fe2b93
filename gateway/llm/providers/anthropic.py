"""The Anthropic driver: the Messages API (`/v1/messages`) for chat, tool calls both ways, and
the legacy Text Completions API (`/v1/complete`) for completions (Kong's `drivers/anthropic.lua`).

Stop reasons are mapped to OpenAI's finish reasons (Kong >= 3.9 does; 3.8 passed them raw),
because OpenAI SDK clients branch on `finish_reason == "tool_calls"`.
"""

from __future__ import annotations

import json
import time
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
    encode,
    json_object,
    openai_answer,
    text_of,
    usage_total,
)
from gateway.llm.providers.content import image_source

if TYPE_CHECKING:
    from gateway.llm.schema import ModelOptions

_PATHS = {"llm/v1/chat": "/v1/messages", "llm/v1/completions": "/v1/complete"}
FINISH_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


class AnthropicDriver(Driver):
    name = "anthropic"
    route_types = frozenset({"llm/v1/chat", "llm/v1/completions", "preserve"})

    def default_url(
        self, route_type: str, model: str, options: ModelOptions, stream: bool
    ) -> UpstreamURL | None:
        return UpstreamURL("https", "api.anthropic.com", 443, _PATHS.get(route_type, "/"))

    def request_headers(self, options: ModelOptions) -> tuple[tuple[str, str], ...]:
        version = options.anthropic_version
        return () if version is None else (("anthropic-version", version),)

    def to_format(self, body: dict[str, Any], model: str, route_type: str) -> dict[str, Any]:
        if route_type == "llm/v1/completions":
            out: dict[str, Any] = {
                "model": model,
                "prompt": f"\n\nHuman: {body.get('prompt', '')}\n\nAssistant:",
                "max_tokens_to_sample": body.get("max_tokens"),
                "stream": bool(body.get("stream")),
            }
        else:
            messages, system = _messages(body.get("messages") or [])
            out = {
                "model": model,
                "messages": messages,
                "max_tokens": body.get("max_tokens") or body.get("max_completion_tokens"),
                "stream": bool(body.get("stream")),
            }
            if system is not None:
                out["system"] = system
            tools = body.get("tools")
            if isinstance(tools, list) and tools:
                out["tools"] = [_tool(t) for t in tools if isinstance(t, dict)]
            choice = _tool_choice(body.get("tool_choice"))
            if choice is not None:
                out["tool_choice"] = choice
        for name in ("temperature", "top_p", "top_k"):
            if body.get(name) is not None:
                out[name] = body[name]
        stop = body.get("stop")
        if stop is not None:
            out["stop_sequences"] = [stop] if isinstance(stop, str) else stop
        return {k: v for k, v in out.items() if v is not None}

    def from_format(self, body: bytes, route_type: str, model: str = "") -> ParsedResponse:
        doc = json_object(body)
        if route_type == "preserve":
            doc = doc or {}
            return ParsedResponse(body, _usage(doc.get("usage")), _str(doc.get("model")))
        if doc is None:
            raise TransformError("failed to decode anthropic response")
        answered = _str(doc.get("model")) or model
        finish = FINISH_REASONS.get(str(doc.get("stop_reason") or "end_turn"), "stop")
        if route_type == "llm/v1/completions":
            if not isinstance(doc.get("completion"), str):
                raise TransformError("'completion' not in anthropic://llm/v1/completions response")
            choice: dict[str, Any] = {
                "index": 0,
                "text": doc["completion"],
                "logprobs": None,
                "finish_reason": finish,
            }
            out = _envelope(doc, "text_completion", "cmpl-", answered, choice)
            return ParsedResponse(encode(out), TokenUsage(), answered)
        content = doc.get("content")
        if not isinstance(content, list):
            raise TransformError("'content' not in anthropic://llm/v1/chat response")
        texts = [
            b["text"] for b in content if isinstance(b, dict) and isinstance(b.get("text"), str)
        ]
        message: dict[str, Any] = {"role": "assistant", "content": "\n".join(texts) or None}
        calls = [
            {
                "id": b.get("id"),
                "type": "function",
                "function": {"name": b.get("name"), "arguments": json.dumps(b.get("input", {}))},
            }
            for b in content
            if isinstance(b, dict) and b.get("type") == "tool_use"
        ]
        if calls:
            message["tool_calls"] = calls
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        usage = _usage(doc.get("usage"))
        ident = _str(doc.get("id")) or f"chatcmpl-{time.time_ns():x}"
        answer = openai_answer(
            ident, "chat.completion", int(time.time()), answered, [choice], usage
        )
        return ParsedResponse(answer, usage, answered)

    def stream_event(
        self, data: str, route_type: str, state: StreamState | None = None
    ) -> StreamEvent:
        state = state or StreamState(model="")
        doc = json_object(data)
        if doc is None:
            return StreamEvent()
        kind = doc.get("type")
        if kind == "completion":  # legacy Text Completions stream
            text = _str(doc.get("completion")) or ""
            reason = doc.get("stop_reason")
            finish = FINISH_REASONS.get(str(reason), "stop") if reason else None
            chunk = state.chunk({"content": text}, finish, chat=False)
            return StreamEvent(text, model=_str(doc.get("model")), chunks=(chunk,))
        if kind == "message_start":
            message = doc.get("message") if isinstance(doc.get("message"), dict) else {}
            assert isinstance(message, dict)
            state.id = _str(message.get("id")) or state.id
            state.role_sent = True
            usage = message.get("usage") if isinstance(message.get("usage"), dict) else {}
            assert isinstance(usage, dict)
            chunk = state.chunk({"role": "assistant", "content": ""})
            reported = TokenUsage(prompt_tokens=count(usage.get("input_tokens")))
            return StreamEvent(usage=reported, model=_str(message.get("model")), chunks=(chunk,))
        if kind == "content_block_start":
            return _block_start(doc, state)
        if kind == "content_block_delta":
            return _block_delta(doc, state)
        if kind == "message_delta":
            delta = doc.get("delta") if isinstance(doc.get("delta"), dict) else {}
            assert isinstance(delta, dict)
            usage = doc.get("usage") if isinstance(doc.get("usage"), dict) else {}
            assert isinstance(usage, dict)
            reason = delta.get("stop_reason")
            chunks: tuple[dict[str, Any], ...] = ()
            if reason:
                chunks = (state.chunk({}, FINISH_REASONS.get(str(reason), "stop")),)
            reported = TokenUsage(
                prompt_tokens=count(usage.get("input_tokens")),
                completion_tokens=count(usage.get("output_tokens")),
            )
            return StreamEvent(usage=reported, chunks=chunks)
        if kind == "message_stop":
            return StreamEvent(done=True)
        if kind == "error":
            # A mid-stream failure (e.g. overloaded): the OpenAI SDK raises on an `error` event.
            return StreamEvent(chunks=({"error": doc.get("error")},))
        return StreamEvent()  # ping, content_block_stop


def _block_start(doc: dict[str, Any], state: StreamState) -> StreamEvent:
    block = doc.get("content_block")
    if not isinstance(block, dict):
        return StreamEvent()
    if block.get("type") == "tool_use":
        index = len(state.tool_calls)
        state.tool_calls[_index(doc)] = index
        call = {
            "index": index,
            "id": block.get("id"),
            "type": "function",
            "function": {"name": block.get("name"), "arguments": ""},
        }
        return StreamEvent(chunks=(state.chunk({"tool_calls": [call]}),))
    text = _str(block.get("text")) or ""
    return StreamEvent(text, chunks=(state.text_delta(text),) if text else ())


def _block_delta(doc: dict[str, Any], state: StreamState) -> StreamEvent:
    delta = doc.get("delta")
    if not isinstance(delta, dict):
        return StreamEvent()
    if delta.get("type") == "input_json_delta":
        index = state.tool_calls.get(_index(doc), 0)
        call = {"index": index, "function": {"arguments": _str(delta.get("partial_json")) or ""}}
        return StreamEvent(chunks=(state.chunk({"tool_calls": [call]}),))
    text = _str(delta.get("text")) or ""
    return StreamEvent(text, chunks=(state.text_delta(text),) if text else ())


def _messages(messages: list[Any]) -> tuple[list[dict[str, Any]], str | None]:
    out: list[dict[str, Any]] = []
    system: str | None = None
    for message in messages:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        content = message.get("content")
        if role == "tool":
            block = {
                "type": "tool_result",
                "tool_use_id": message.get("tool_call_id"),
                "content": text_of(content),
            }
            # Results of parallel calls belong in one user turn.
            previous = out[-1] if out else None
            if previous and previous["role"] == "user" and _all_results(previous["content"]):
                previous["content"].append(block)
            else:
                out.append({"role": "user", "content": [block]})
        elif role == "assistant":
            blocks = _blocks(content)
            for call in message.get("tool_calls") or []:
                if isinstance(call, dict) and isinstance(call.get("function"), dict):
                    function = call["function"]
                    blocks.append(
                        {
                            "type": "tool_use",
                            "id": call.get("id"),
                            "name": function.get("name"),
                            "input": _arguments(function.get("arguments")),
                        }
                    )
            out.append({"role": "assistant", "content": blocks})
        elif role == "user":
            out.append({"role": "user", "content": _blocks(content)})
        else:
            # Kong: any other role (system, developer) is the system prompt; the last one wins.
            system = text_of(content)
    return out, system


def _blocks(content: object) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    blocks: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            blocks.append({"type": "text", "text": part["text"]})
        elif part.get("type") == "image_url":
            source = image_source(part.get("image_url"))
            if source is not None:
                blocks.append({"type": "image", "source": source})
    return blocks


def _all_results(content: object) -> bool:
    return isinstance(content, list) and all(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content
    )


def _arguments(arguments: object) -> object:
    if isinstance(arguments, str):
        try:
            return json.loads(arguments) if arguments.strip() else {}
        except ValueError:
            return {}
    return arguments if isinstance(arguments, dict) else {}


def _tool(tool: dict[str, Any]) -> dict[str, Any]:
    function = tool.get("function") if isinstance(tool.get("function"), dict) else tool
    assert isinstance(function, dict)
    out = {
        "name": function.get("name"),
        "input_schema": function.get("parameters") or {"type": "object", "properties": {}},
    }
    if function.get("description"):
        out["description"] = function["description"]
    return out


def _tool_choice(choice: object) -> dict[str, Any] | None:
    if choice == "required":
        return {"type": "any"}
    if choice in ("auto", "none"):
        return {"type": choice}
    if isinstance(choice, dict) and isinstance(choice.get("function"), dict):
        return {"type": "tool", "name": choice["function"].get("name")}
    return None


def _usage(usage: object) -> TokenUsage:
    if not isinstance(usage, dict):
        return TokenUsage()
    return usage_total(count(usage.get("input_tokens")), count(usage.get("output_tokens")))


def _envelope(
    doc: dict[str, Any], kind: str, prefix: str, model: str, choice: dict[str, Any]
) -> dict[str, Any]:
    ident = _str(doc.get("id")) or f"{prefix}{time.time_ns():x}"
    return {
        "id": ident,
        "object": kind,
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
    }


def _index(doc: dict[str, Any]) -> int:
    index = doc.get("index")
    return index if isinstance(index, int) else 0


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None
