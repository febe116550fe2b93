"""The Ollama driver: `/api/chat`, `/api/generate` and `/api/embed`, streamed as NDJSON
(Kong's `to_ollama` / `from_ollama`, used by the `ollama` provider and by mistral and llama2 in
their `ollama` format). Self-hosted: `model.options.upstream_url` names the endpoint."""

from __future__ import annotations

import json
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
from gateway.llm.providers.content import image_of

if TYPE_CHECKING:
    from gateway.llm.schema import ModelOptions


class OllamaDriver(Driver):
    name = "ollama"
    route_types = frozenset({"llm/v1/chat", "llm/v1/completions", "llm/v1/embeddings", "preserve"})

    def default_url(
        self, route_type: str, model: str, options: ModelOptions, stream: bool
    ) -> UpstreamURL | None:
        return None

    def to_format(self, body: dict[str, Any], model: str, route_type: str) -> dict[str, Any]:
        if route_type == "llm/v1/embeddings":
            return {"model": model, "input": body.get("input")}
        out: dict[str, Any] = {"model": model, "stream": bool(body.get("stream"))}
        if route_type == "llm/v1/completions":
            out["prompt"] = body.get("prompt")
        else:
            out["messages"] = [
                _message(m) for m in body.get("messages") or [] if isinstance(m, dict)
            ]
            tools = body.get("tools")
            if isinstance(tools, list) and tools:
                out["tools"] = tools
        stop = body.get("stop")
        options = {
            "num_predict": body.get("max_tokens") or body.get("max_completion_tokens"),
            "temperature": body.get("temperature"),
            "top_p": body.get("top_p"),
            "top_k": body.get("top_k"),
            "seed": body.get("seed"),
            "stop": [stop] if isinstance(stop, str) else stop,
        }
        options = {k: v for k, v in options.items() if v is not None}
        if options:
            out["options"] = options
        return out

    def from_format(self, body: bytes, route_type: str, model: str = "") -> ParsedResponse:
        doc = json_object(body)
        if route_type == "preserve":
            doc = doc or {}
            return ParsedResponse(body, _usage(doc), None)
        if doc is None:
            raise TransformError(f"failed to decode {self.name} response")
        answered = doc.get("model") if isinstance(doc.get("model"), str) else model
        usage = _usage(doc)
        if route_type == "llm/v1/embeddings":
            vectors = doc.get("embeddings")
            if not isinstance(vectors, list):
                raise TransformError(f"'embeddings' not in {self.name}://{route_type} response")
            data = [
                {"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)
            ]
            prompt = usage.prompt_tokens or 0
            out: dict[str, Any] = {
                "object": "list",
                "data": data,
                "model": answered,
                "usage": {"prompt_tokens": prompt, "total_tokens": prompt},
            }
            return ParsedResponse(encode(out), TokenUsage(prompt, None, prompt), answered)
        if route_type == "llm/v1/completions":
            if not isinstance(doc.get("response"), str):
                raise TransformError(f"'response' not in {self.name}://{route_type} response")
            finish = _finish(doc, False)
            choice: dict[str, Any] = {
                "index": 0,
                "text": doc["response"],
                "logprobs": None,
                "finish_reason": finish,
            }
            kind, ident = "text_completion", "cmpl-ollama"
        else:
            message = doc.get("message")
            if not isinstance(message, dict):
                raise TransformError(f"'message' not in {self.name}://{route_type} response")
            calls = _tool_calls(message.get("tool_calls"), 0)
            out_message: dict[str, Any] = {
                "role": "assistant",
                "content": text_of(message.get("content")) or (None if calls else ""),
            }
            if calls:
                out_message["tool_calls"] = calls
            choice = {
                "index": 0,
                "message": out_message,
                "logprobs": None,
                "finish_reason": _finish(doc, bool(calls)),
            }
            kind, ident = "chat.completion", "chatcmpl-ollama"
        answer = openai_answer(ident, kind, 0, answered, [choice], usage)
        return ParsedResponse(answer, usage, answered)

    def stream_event(
        self, data: str, route_type: str, state: StreamState | None = None
    ) -> StreamEvent:
        state = state or StreamState(model="")
        doc = json_object(data)
        if doc is None:
            return StreamEvent()
        if isinstance(doc.get("error"), str):
            return StreamEvent(chunks=({"error": {"message": doc["error"]}},))
        chat = route_type != "llm/v1/completions"
        chunks: list[dict[str, Any]] = []
        if chat:
            message = doc.get("message") if isinstance(doc.get("message"), dict) else {}
            assert isinstance(message, dict)
            text = text_of(message.get("content"))
            for call in _tool_calls(message.get("tool_calls"), len(state.tool_calls)):
                state.tool_calls[call["index"]] = call["index"]
                chunks.append(state.chunk({"tool_calls": [call]}))
        else:
            response = doc.get("response")
            text = response if isinstance(response, str) else ""
        if text or (chat and not state.role_sent):
            chunks.insert(0, state.text_delta(text, chat=chat))
        usage = None
        if doc.get("done") is True:
            chunks.append(state.chunk({}, _finish(doc, bool(state.tool_calls)), chat=chat))
            usage = _usage(doc)
        answered = doc.get("model") if isinstance(doc.get("model"), str) else None
        return StreamEvent(text, usage, answered, chunks=tuple(chunks))


def _message(message: dict[str, Any]) -> dict[str, Any]:
    content = message.get("content")
    out: dict[str, Any] = {"role": message.get("role"), "content": text_of(content)}
    images = [
        image.data
        for part in (content if isinstance(content, list) else [])
        if isinstance(part, dict) and part.get("type") == "image_url"
        for image in [image_of(part.get("image_url"))]
        if image is not None and image.data is not None
    ]
    if images:
        out["images"] = images
    calls = []
    for call in message.get("tool_calls") or []:
        if isinstance(call, dict) and isinstance(call.get("function"), dict):
            function = call["function"]
            arguments = function.get("arguments")
            try:
                args = json.loads(arguments) if isinstance(arguments, str) else arguments
            except ValueError:
                args = {}
            calls.append({"function": {"name": function.get("name"), "arguments": args or {}}})
    if calls:
        out["tool_calls"] = calls
    return out


def _tool_calls(calls: object, first: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for call in calls if isinstance(calls, list) else ():
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict):
            continue
        index = first + len(out)
        out.append(
            {
                "index": index,
                "id": f"call_{index}",
                "type": "function",
                "function": {
                    "name": function.get("name"),
                    "arguments": json.dumps(function.get("arguments") or {}),
                },
            }
        )
    return out


def _finish(doc: dict[str, Any], called: bool) -> str:
    if called:
        return "tool_calls"
    return "length" if doc.get("done_reason") == "length" else "stop"


def _usage(doc: dict[str, Any]) -> TokenUsage:
    return usage_total(count(doc.get("prompt_eval_count")), count(doc.get("eval_count")))
