"""A real HTTP fake of Anthropic's API, written from Anthropic's API reference.

`POST /v1/messages` (Messages API, JSON or SSE events `message_start`, `content_block_start`,
`ping`, `content_block_delta`, `content_block_stop`, `message_delta`, `message_stop`) and the
legacy `POST /v1/complete` (Text Completions). Like the real API it requires `x-api-key` (when
configured) and `anthropic-version`, and rejects what the real API rejects: unknown fields,
missing `max_tokens`, roles other than user/assistant, a first turn that is not the user's,
tool results without a matching tool use. Answers echo the last user text; when tools are
offered (and `tool_choice` is not none) and the last turn is not a tool result, it calls the
first tool (see `harness.tool_input`). Token counts are word counts.

In-process: `with fake_anthropic(api_key="k") as fake: fake.url; fake.requests`.
As a process: `python -m tests.fakes.anthropic_server --port N [--api-key K]`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

from tests.fakes.harness import (
    BODY,
    AppBackend,
    FakeServer,
    Handler,
    main,
    pieces,
    reply_to,
    tool_input,
    words,
)

_MESSAGE_FIELDS = {
    "model", "messages", "max_tokens", "system", "stream", "temperature", "top_p", "top_k",
    "stop_sequences", "tools", "tool_choice", "metadata", "thinking", "service_tier",
}  # fmt: skip
_COMPLETE_FIELDS = {
    "model", "prompt", "max_tokens_to_sample", "stream", "temperature", "top_p", "top_k",
    "stop_sequences", "metadata",
}  # fmt: skip
_BLOCK_TYPES = {"text", "image", "tool_use", "tool_result", "document"}


def _error(status: int, kind: str, message: str) -> web.Response:
    body = {"type": "error", "error": {"type": kind, "message": message}}
    return web.json_response(body, status=status, headers={"request-id": "req_fake"})


def _invalid(message: str) -> web.Response:
    return _error(400, "invalid_request_error", message)


class AnthropicBackend(AppBackend):
    def routes(self) -> list[tuple[str, str, Handler]]:
        return [("POST", "/v1/messages", self.messages), ("POST", "/v1/complete", self.complete)]

    def _check_headers(self, request: web.Request) -> web.Response | None:
        if self.api_key is not None:
            key = request.headers.get("x-api-key")
            if key is None:
                return _error(401, "authentication_error", "x-api-key header is required")
            if key != self.api_key:
                return _error(401, "authentication_error", "invalid x-api-key")
        if not request.headers.get("anthropic-version"):
            return _invalid("anthropic-version: header is required")
        return None

    def _checked_body(self, request: web.Request) -> dict[str, Any] | web.Response:
        """The JSON object sent, or the error answer to headers or a body Anthropic refuses."""
        denied = self._check_headers(request)
        if denied is not None:
            return denied
        doc = request[BODY]
        if not isinstance(doc, dict):
            return _invalid("There was an error parsing the body of your request")
        return doc

    async def messages(self, request: web.Request) -> web.StreamResponse:
        doc = self._checked_body(request)
        if isinstance(doc, web.Response):
            return doc
        problem = _check_messages_request(doc)
        if problem is not None:
            return _invalid(problem)
        messages: list[dict[str, Any]] = doc["messages"]
        last = messages[-1]
        results = _tool_results(last)
        tools = doc.get("tools") or []
        choice = doc.get("tool_choice") or {}
        blocks: list[dict[str, Any]]
        if tools and not results and choice.get("type") != "none":
            tool = tools[0]
            if choice.get("type") == "tool":
                tool = next((t for t in tools if t["name"] == choice.get("name")), tool)
            call = {
                "type": "tool_use",
                "id": "toolu_" + uuid.uuid4().hex[:20],
                "name": tool["name"],
                "input": tool_input(tool.get("input_schema"), _text(last)),
            }
            blocks, stop = [call], "tool_use"
            output = words(json.dumps(call["input"]))
        else:
            said = "; ".join(results) if results else _text(last)
            text = f"Tool said: {said}" if results else reply_to(said)
            blocks, stop = [{"type": "text", "text": text}], "end_turn"
            output = words(text)
        prompt = sum(words(_text(m)) for m in messages) + words(_system_text(doc.get("system")))
        message = {
            "id": "msg_" + uuid.uuid4().hex[:24],
            "type": "message",
            "role": "assistant",
            "model": doc["model"],
            "content": blocks,
            "stop_reason": stop,
            "stop_sequence": None,
            "usage": {"input_tokens": prompt, "output_tokens": output},
        }
        if doc.get("stream") is True:
            return await self._stream_message(request, message)
        return web.json_response(message, headers={"request-id": "req_fake"})

    async def _stream_message(
        self, request: web.Request, message: dict[str, Any]
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "usage": {"input_tokens": message["usage"]["input_tokens"], "output_tokens": 1},
        }
        await self._event(response, "message_start", {"type": "message_start", "message": start})
        await self._event(response, "ping", {"type": "ping"})
        for index, block in enumerate(message["content"]):
            first: dict[str, Any]
            deltas: list[dict[str, Any]]
            if block["type"] == "text":
                first = {"type": "text", "text": ""}
                deltas = [{"type": "text_delta", "text": p} for p in pieces(block["text"])]
            else:
                first = {**block, "input": {}}
                arguments = json.dumps(block["input"])
                half = len(arguments) // 2
                deltas = [
                    {"type": "input_json_delta", "partial_json": part}
                    for part in (arguments[:half], arguments[half:])
                ]
            event = {"type": "content_block_start", "index": index, "content_block": first}
            await self._event(response, "content_block_start", event)
            for delta in deltas:
                event = {"type": "content_block_delta", "index": index, "delta": delta}
                await self._event(response, "content_block_delta", event)
            stop_event = {"type": "content_block_stop", "index": index}
            await self._event(response, "content_block_stop", stop_event)
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
            "usage": {"output_tokens": message["usage"]["output_tokens"]},
        }
        await self._event(response, "message_delta", delta)
        await self._event(response, "message_stop", {"type": "message_stop"})
        await response.write_eof()
        return response

    async def complete(self, request: web.Request) -> web.StreamResponse:
        doc = self._checked_body(request)
        if isinstance(doc, web.Response):
            return doc
        unknown = sorted(set(doc) - _COMPLETE_FIELDS)
        if unknown:
            return _invalid(f"{unknown[0]}: Extra inputs are not permitted")
        if not isinstance(doc.get("max_tokens_to_sample"), int):
            return _invalid("max_tokens_to_sample: Field required")
        prompt = doc.get("prompt")
        if not isinstance(prompt, str) or not prompt.startswith("\n\nHuman:"):
            return _invalid('prompt must start with "\\n\\nHuman:" turn')
        if not prompt.endswith("\n\nAssistant:"):
            return _invalid('prompt must end with "\\n\\nAssistant:" turn')
        said = prompt.removeprefix("\n\nHuman:").removesuffix("\n\nAssistant:").strip()
        text = " " + reply_to(said)
        base = {"type": "completion", "id": "compl_" + uuid.uuid4().hex[:20], "model": doc["model"]}
        if doc.get("stream") is not True:
            return web.json_response(
                {**base, "completion": text, "stop_reason": "stop_sequence", "stop": "\n\nHuman:"}
            )
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        for part in pieces(text):
            event = {**base, "completion": part, "stop_reason": None}
            await self._event(response, "completion", event)
        end = {**base, "completion": "", "stop_reason": "stop_sequence"}
        await self._event(response, "completion", end)
        await response.write_eof()
        return response

    async def _event(self, response: web.StreamResponse, name: str, data: object) -> None:
        await response.write(f"event: {name}\ndata: {json.dumps(data)}\n\n".encode())
        await self.pause()


def _check_messages_request(doc: dict[str, Any]) -> str | None:
    unknown = sorted(set(doc) - _MESSAGE_FIELDS)
    if unknown:
        return f"{unknown[0]}: Extra inputs are not permitted"
    if not isinstance(doc.get("model"), str):
        return "model: Field required"
    if not isinstance(doc.get("max_tokens"), int):
        return "max_tokens: Field required"
    messages = doc.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    known_tool_uses: set[str] = set()
    for i, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            return f'messages.{i}.role: Input should be "user" or "assistant"'
        if i == 0 and role != "user":
            return 'messages: first message must use the "user" role'
        content = message.get("content")
        if isinstance(content, str):
            continue
        if not isinstance(content, list):
            return f"messages.{i}.content: Input should be a valid list"
        for j, block in enumerate(content):
            kind = block.get("type") if isinstance(block, dict) else None
            if kind not in _BLOCK_TYPES:
                return f"messages.{i}.content.{j}.type: Input tag '{kind}' does not match"
            if kind == "tool_use":
                if not isinstance(block.get("input"), dict):
                    return f"messages.{i}.content.{j}.tool_use.input: Input should be an object"
                known_tool_uses.add(str(block.get("id")))
            if kind == "tool_result" and block.get("tool_use_id") not in known_tool_uses:
                return (
                    f"messages.{i}.content.{j}: unexpected `tool_use_id` found in `tool_result` "
                    "blocks. Each `tool_result` block must have a corresponding `tool_use` "
                    "block in the previous message."
                )
    for i, tool in enumerate(doc.get("tools") or []):
        if not isinstance(tool, dict) or "name" not in tool or "input_schema" not in tool:
            return f"tools.{i}: name and input_schema are required"
        extra = sorted(set(tool) - {"name", "description", "input_schema", "cache_control", "type"})
        if extra:
            return f"tools.{i}.{extra[0]}: Extra inputs are not permitted"
    choice = doc.get("tool_choice")
    if choice is not None and (
        not isinstance(choice, dict) or choice.get("type") not in ("auto", "any", "tool", "none")
    ):
        return "tool_choice: Input tag does not match any of the expected tags"
    return None


def _text(message: dict[str, Any]) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    texts = [b.get("text", "") for b in content or [] if b.get("type") == "text"]
    return " ".join(t for t in texts if isinstance(t, str))


def _system_text(system: object) -> str:
    if isinstance(system, list):
        return " ".join(str(b.get("text", "")) for b in system if isinstance(b, dict))
    return system if isinstance(system, str) else ""


def _tool_results(message: dict[str, Any]) -> list[str]:
    content = message.get("content")
    if not isinstance(content, list):
        return []
    out = []
    for block in content:
        if block.get("type") == "tool_result":
            value = block.get("content")
            out.append(value if isinstance(value, str) else json.dumps(value))
    return out


def fake_anthropic(
    api_key: str | None = None, *, port: int = 0, stream_delay: float = 0.0
) -> FakeServer[AnthropicBackend]:
    """The fake, not yet started: use it as a context manager."""
    return FakeServer(AnthropicBackend(api_key, stream_delay), port=port)


if __name__ == "__main__":
    main(AnthropicBackend, "Fake Anthropic API server")
