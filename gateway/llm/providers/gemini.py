"""The Gemini driver: `generateContent` / `streamGenerateContent` (a streamed JSON array) on
Google AI's public endpoint or Vertex AI, function calling both ways, and `batchEmbedContents`
for embeddings (Kong's `drivers/gemini.lua`)."""

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
)
from gateway.llm.providers.content import image_of

if TYPE_CHECKING:
    from gateway.llm.schema import ModelOptions

_PUBLIC_HOST = "generativelanguage.googleapis.com"
_FINISH_REASONS = {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter"}
_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}


class GeminiDriver(Driver):
    name = "gemini"
    clear_response_headers = ("Set-Cookie",)
    route_types = frozenset({"llm/v1/chat", "llm/v1/embeddings", "preserve"})

    def default_url(
        self, route_type: str, model: str, options: ModelOptions, stream: bool
    ) -> UpstreamURL | None:
        if route_type == "llm/v1/embeddings":
            operation = "batchEmbedContents"
        else:
            operation = "streamGenerateContent" if stream else "generateContent"
        vertex = options.gemini or {}
        if vertex.get("api_endpoint") and vertex.get("project_id") and vertex.get("location_id"):
            path = (
                f"/v1/projects/{vertex['project_id']}/locations/{vertex['location_id']}"
                f"/publishers/google/models/{model}:{operation}"
            )
            return UpstreamURL("https", str(vertex["api_endpoint"]), 443, path)
        return UpstreamURL("https", _PUBLIC_HOST, 443, f"/v1beta/models/{model}:{operation}")

    def upstream_path(self, path: str, stream: bool) -> str:
        # The operation is part of the path: an upstream_url naming generateContent streams
        # through its streamGenerateContent sibling, so one URL serves both modes.
        if stream and path.endswith(":generateContent"):
            return path.removesuffix(":generateContent") + ":streamGenerateContent"
        return path

    def to_format(self, body: dict[str, Any], model: str, route_type: str) -> dict[str, Any]:
        if route_type == "llm/v1/embeddings":
            texts = body.get("input")
            texts = [texts] if isinstance(texts, str) else texts or []
            return {
                "requests": [
                    {"model": f"models/{model}", "content": {"parts": [{"text": str(t)}]}}
                    for t in texts
                ]
            }
        contents, system = _contents(body.get("messages") or [])
        out: dict[str, Any] = {"contents": contents}
        if system:
            if model.startswith("gemini-1.0"):
                raise ValueError("system prompts aren't supported on gemini-1.0 models")
            out["systemInstruction"] = {"parts": [{"text": system}]}
        stop = body.get("stop")
        config = {
            "maxOutputTokens": body.get("max_tokens") or body.get("max_completion_tokens"),
            "stopSequences": [stop] if isinstance(stop, str) else stop,
            "temperature": body.get("temperature"),
            "topK": body.get("top_k"),
            "topP": body.get("top_p"),
        }
        config = {k: v for k, v in config.items() if v is not None}
        if config:
            out["generationConfig"] = config
        declarations = [
            _declaration(t["function"])
            for t in body.get("tools") or []
            if isinstance(t, dict) and isinstance(t.get("function"), dict)
        ]
        if declarations:
            out["tools"] = [{"functionDeclarations": declarations}]
        choice = body.get("tool_choice")
        if isinstance(choice, str) and choice in _TOOL_MODES:
            out["toolConfig"] = {"functionCallingConfig": {"mode": _TOOL_MODES[choice]}}
        elif isinstance(choice, dict) and isinstance(choice.get("function"), dict):
            name = choice["function"].get("name")
            config_ = {"mode": "ANY", "allowedFunctionNames": [name]}
            out["toolConfig"] = {"functionCallingConfig": config_}
        return out

    def from_format(self, body: bytes, route_type: str, model: str = "") -> ParsedResponse:
        doc = json_object(body)
        if route_type == "preserve":
            doc = doc or {}
            return ParsedResponse(body, _usage(doc), None)
        if doc is None:
            raise TransformError("failed to decode gemini response")
        if route_type == "llm/v1/embeddings":
            return _embeddings(doc, model)
        candidates = doc.get("candidates")
        if not isinstance(candidates, list) or not candidates:
            raise TransformError("'candidates' not in gemini://llm/v1/chat response")
        answered = doc.get("modelVersion") if isinstance(doc.get("modelVersion"), str) else model
        choices = []
        for i, candidate in enumerate(candidates):
            texts, calls = _parts(candidate, i * 100)
            message: dict[str, Any] = {"role": "assistant", "content": "".join(texts) or None}
            if calls:
                message["tool_calls"] = calls
            finish = _finish(candidate.get("finishReason"), bool(calls))
            choices.append(
                {"index": i, "message": message, "logprobs": None, "finish_reason": finish}
            )
        usage = _usage(doc)
        ident = doc.get("responseId") or "chatcmpl-gemini"
        out = openai_answer(ident, "chat.completion", 0, answered, choices, usage)
        return ParsedResponse(out, usage, answered)

    def stream_event(
        self, data: str, route_type: str, state: StreamState | None = None
    ) -> StreamEvent:
        state = state or StreamState(model="")
        doc = json_object(data)
        if doc is None:
            return StreamEvent()
        if isinstance(doc.get("error"), dict):
            return StreamEvent(chunks=({"error": doc["error"]},))
        candidates = doc.get("candidates")
        candidate = candidates[0] if isinstance(candidates, list) and candidates else {}
        texts, calls = _parts(
            candidate if isinstance(candidate, dict) else {}, len(state.tool_calls)
        )
        text = "".join(texts)
        chunks: list[dict[str, Any]] = []
        if text or not state.role_sent:
            chunks.append(state.text_delta(text))
        for call in calls:
            state.tool_calls[call["index"]] = call["index"]
            chunks.append(state.chunk({"tool_calls": [call]}))
        reason = candidate.get("finishReason") if isinstance(candidate, dict) else None
        if reason:
            chunks.append(state.chunk({}, _finish(reason, bool(state.tool_calls))))
        answered = doc.get("modelVersion") if isinstance(doc.get("modelVersion"), str) else None
        usage = _usage(doc) if isinstance(doc.get("usageMetadata"), dict) else None
        return StreamEvent(text, usage, answered, chunks=tuple(chunks))


def _contents(messages: list[Any]) -> tuple[list[dict[str, Any]], str]:
    contents: list[dict[str, Any]] = []
    system: list[str] = []
    names: dict[str, str] = {}  # tool_call_id -> function name, for functionResponse parts
    for message in messages:
        if not isinstance(message, dict):
            continue
        role, content = message.get("role"), message.get("content")
        if role in ("system", "developer"):
            system.append(text_of(content))
        elif role == "tool":
            name = names.get(str(message.get("tool_call_id")), "")
            result = _json_value(text_of(content))
            response = result if isinstance(result, dict) else {"content": result}
            part = {"functionResponse": {"name": name, "response": response}}
            contents.append({"role": "user", "parts": [part]})
        else:
            parts = _input_parts(content)
            for call in message.get("tool_calls") or []:
                if isinstance(call, dict) and isinstance(call.get("function"), dict):
                    function = call["function"]
                    names[str(call.get("id"))] = str(function.get("name"))
                    args = _json_value(function.get("arguments") or "{}")
                    parts.append({"functionCall": {"name": function.get("name"), "args": args}})
            contents.append({"role": "model" if role == "assistant" else "user", "parts": parts})
    return contents, "\n".join(s for s in system if s)


def _input_parts(content: object) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"text": content}] if content else []
    parts: list[dict[str, Any]] = []
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, dict):
            continue
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            parts.append({"text": part["text"]})
        elif part.get("type") == "image_url":
            image = image_of(part.get("image_url"))
            if image is not None and image.data is not None:
                parts.append({"inlineData": {"mimeType": image.media_type, "data": image.data}})
            elif image is not None:
                parts.append({"fileData": {"mimeType": "image/*", "fileUri": image.url}})
    return parts


def _declaration(function: dict[str, Any]) -> dict[str, Any]:
    out = {"name": function.get("name")}
    if function.get("description"):
        out["description"] = function["description"]
    if function.get("parameters"):
        out["parameters"] = function["parameters"]
    return out


def _parts(candidate: dict[str, Any], first_call: int) -> tuple[list[str], list[dict[str, Any]]]:
    content = candidate.get("content")
    parts = content.get("parts") if isinstance(content, dict) else None
    texts: list[str] = []
    calls: list[dict[str, Any]] = []
    for part in parts if isinstance(parts, list) else ():
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str) and not part.get("thought"):
            texts.append(part["text"])
        call = part.get("functionCall")
        if isinstance(call, dict):
            index = first_call + len(calls)
            calls.append(
                {
                    "index": index,
                    "id": call.get("id") or f"call_{index}",
                    "type": "function",
                    "function": {
                        "name": call.get("name"),
                        "arguments": json.dumps(call.get("args") or {}),
                    },
                }
            )
    return texts, calls


def _finish(reason: object, called: bool) -> str:
    if called and reason in (None, "STOP"):
        return "tool_calls"
    if not isinstance(reason, str):
        return "stop"
    return _FINISH_REASONS.get(reason, reason.lower())


def _usage(doc: dict[str, Any]) -> TokenUsage:
    meta = doc.get("usageMetadata")
    if not isinstance(meta, dict):
        return TokenUsage()
    return TokenUsage(
        count(meta.get("promptTokenCount")),
        count(meta.get("candidatesTokenCount")),
        count(meta.get("totalTokenCount")),
    )


def _embeddings(doc: dict[str, Any], model: str) -> ParsedResponse:
    embeddings = doc.get("embeddings")
    if not isinstance(embeddings, list):
        raise TransformError("'embeddings' not in gemini://llm/v1/embeddings response")
    data = [
        {"object": "embedding", "index": i, "embedding": e.get("values", [])}
        for i, e in enumerate(embeddings)
        if isinstance(e, dict)
    ]
    out = {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": 0, "total_tokens": 0},
    }
    return ParsedResponse(encode(out), TokenUsage(), model)


def _json_value(text: object) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text
