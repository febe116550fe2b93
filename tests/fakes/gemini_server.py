"""A real HTTP fake of the Gemini API (Google AI, `v1beta`), written from its API reference.

`POST /v1beta/models/{model}:generateContent`, `:streamGenerateContent` (a JSON array streamed
element by element, or SSE with `?alt=sse`) and `:batchEmbedContents`. The API key is read from
the `key` query argument or the `x-goog-api-key` header. Like the real API it rejects unknown
fields, roles other than user/model, parts without exactly one kind of data, and a model in
the body of an embedding request that is not the URL's. Answers echo the last user text; when
function declarations are offered (and the mode is not NONE) and the last turn is not a
function response, it calls the first function. Token counts are word counts.

In-process: `with fake_gemini(api_key="k") as fake: fake.url; fake.requests`.
As a process: `python -m tests.fakes.gemini_server --port N [--api-key K]`.
"""

from __future__ import annotations

import json
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

_FIELDS = {
    "contents", "systemInstruction", "generationConfig", "tools", "toolConfig",
    "safetySettings", "cachedContent",
}  # fmt: skip
_PART_KINDS = {
    "text", "inlineData", "fileData", "functionCall", "functionResponse", "executableCode",
    "codeExecutionResult",
}  # fmt: skip
_CONFIG_FIELDS = {
    "maxOutputTokens", "stopSequences", "temperature", "topK", "topP", "candidateCount",
    "responseMimeType", "responseSchema", "seed", "presencePenalty", "frequencyPenalty",
}  # fmt: skip


def _error(status: int, state: str, message: str) -> web.Response:
    body = {"error": {"code": status, "message": message, "status": state}}
    return web.json_response(body, status=status)


class GeminiBackend(AppBackend):
    def routes(self) -> list[tuple[str, str, Handler]]:
        return [("POST", "/v1beta/models/{call}", self.call)]

    async def call(self, request: web.Request) -> web.StreamResponse:
        model, _, method = request.match_info["call"].partition(":")
        if self.api_key is not None:
            key = request.query.get("key") or request.headers.get("x-goog-api-key")
            if key is None:
                return _error(
                    403,
                    "PERMISSION_DENIED",
                    "Method doesn't allow unregistered callers (callers without established "
                    "identity). Please use API Key or other form of API consumer identity to "
                    "call this API.",
                )
            if key != self.api_key:
                return _error(
                    400, "INVALID_ARGUMENT", "API key not valid. Please pass a valid API key."
                )
        doc = request[BODY]
        if not isinstance(doc, dict):
            return _error(400, "INVALID_ARGUMENT", "Invalid JSON payload received.")
        if method == "batchEmbedContents":
            return self._embed(model, doc)
        if method not in ("generateContent", "streamGenerateContent"):
            return _error(404, "NOT_FOUND", f"Method {method} not found.")
        problem = _check_generate(doc)
        if problem is not None:
            return _error(400, "INVALID_ARGUMENT", problem)
        answer = _answer(model, doc)
        if method == "generateContent":
            return web.json_response(answer)
        return await self._stream(request, answer, sse=request.query.get("alt") == "sse")

    async def _stream(
        self, request: web.Request, answer: dict[str, Any], sse: bool
    ) -> web.StreamResponse:
        content_type = "text/event-stream" if sse else "application/json; charset=UTF-8"
        response = web.StreamResponse(headers={"Content-Type": content_type})
        await response.prepare(request)
        candidate = answer["candidates"][0]
        parts = candidate["content"]["parts"]
        usage = answer["usageMetadata"]
        elements: list[dict[str, Any]] = []
        if "text" in parts[0]:
            texts = pieces(parts[0]["text"])
            # Gemini streams a few words per element.
            groups = ["".join(texts[i : i + 2]) for i in range(0, len(texts), 2)]
        else:
            groups = []
        for i, text in enumerate(groups):
            last = i == len(groups) - 1
            element = {
                "candidates": [
                    {
                        "content": {"parts": [{"text": text}], "role": "model"},
                        **({"finishReason": "STOP"} if last else {}),
                        "index": 0,
                    }
                ],
                "usageMetadata": {"promptTokenCount": usage["promptTokenCount"]},
                "modelVersion": answer["modelVersion"],
            }
            if last:
                element["usageMetadata"] = usage
            elements.append(element)
        if not groups:
            elements.append(answer)
        for i, element in enumerate(elements):
            data = json.dumps(element, indent=2)
            if sse:
                frame = f"data: {json.dumps(element)}\r\n\r\n"
            else:
                # The array's framing as Google sends it: "[{...}\n,\r\n{...}\n]".
                frame = ("[" if i == 0 else ",\r\n") + data + "\n"
            await response.write(frame.encode())
            await self.pause()
        if not sse:
            await response.write(b"]")
        await response.write_eof()
        return response

    def _embed(self, model: str, doc: dict[str, Any]) -> web.Response:
        requests = doc.get("requests")
        if not isinstance(requests, list) or not requests:
            return _error(400, "INVALID_ARGUMENT", "* BatchEmbedContentsRequest.requests: required")
        embeddings = []
        for i, item in enumerate(requests):
            if not isinstance(item, dict) or item.get("model") != f"models/{model}":
                return _error(
                    400,
                    "INVALID_ARGUMENT",
                    f"Model names should start with `models/` and match the URL: requests[{i}]",
                )
            text = " ".join(p.get("text", "") for p in item.get("content", {}).get("parts", []))
            embeddings.append({"values": [float(len(text)), float(words(text)), 0.5]})
        return web.json_response({"embeddings": embeddings})


def _check_generate(doc: dict[str, Any]) -> str | None:
    for name in doc:
        if name not in _FIELDS:
            return f'Invalid JSON payload received. Unknown name "{name}": Cannot find field.'
    contents = doc.get("contents")
    if not isinstance(contents, list) or not contents:
        return "* GenerateContentRequest.contents: contents is not specified"
    for i, content in enumerate(contents):
        if not isinstance(content, dict) or content.get("role") not in ("user", "model"):
            return f"Please use a valid role: user, model. (contents[{i}])"
        parts = content.get("parts")
        if not isinstance(parts, list) or not parts:
            return (
                f"* GenerateContentRequest.contents[{i}].parts: contents.parts must not be empty."
            )
        for j, part in enumerate(parts):
            kinds = [k for k in part if k in _PART_KINDS] if isinstance(part, dict) else []
            if len(kinds) != 1 or len(kinds) != len(part):
                return (
                    f"* GenerateContentRequest.contents[{i}].parts[{j}].data: required oneof "
                    "field 'data' must have one initialized field"
                )
    config = doc.get("generationConfig") or {}
    for name in config:
        if name not in _CONFIG_FIELDS:
            return (
                f'Invalid JSON payload received. Unknown name "{name}" at '
                "'generation_config': Cannot find field."
            )
    system = doc.get("systemInstruction")
    if system is not None and not (
        isinstance(system, dict) and isinstance(system.get("parts"), list)
    ):
        return "* GenerateContentRequest.system_instruction.parts: required"
    for tool in doc.get("tools") or []:
        for declaration in tool.get("functionDeclarations") or []:
            if not isinstance(declaration.get("name"), str):
                return (
                    "* GenerateContentRequest.tools[0].function_declarations[0].name: "
                    "Name cannot be empty."
                )
    return None


def _answer(model: str, doc: dict[str, Any]) -> dict[str, Any]:
    contents: list[dict[str, Any]] = doc["contents"]
    last = contents[-1]
    responses = [p["functionResponse"] for p in last["parts"] if "functionResponse" in p]
    text_in = " ".join(p.get("text", "") for p in last["parts"] if "text" in p)
    declarations = [d for t in doc.get("tools") or [] for d in t.get("functionDeclarations") or []]
    mode = (doc.get("toolConfig") or {}).get("functionCallingConfig", {}).get("mode", "AUTO")
    if declarations and not responses and mode != "NONE":
        function = declarations[0]
        args = tool_input(function.get("parameters"), text_in)
        part: dict[str, Any] = {"functionCall": {"name": function["name"], "args": args}}
        output = words(json.dumps(args))
    else:
        if responses:
            text = "Tool said: " + "; ".join(json.dumps(r.get("response")) for r in responses)
        else:
            text = reply_to(text_in)
        part = {"text": text}
        output = words(text)
    system = doc.get("systemInstruction") or {}
    prompt = sum(words(p.get("text", "")) for c in contents for p in c["parts"])
    prompt += sum(words(p.get("text", "")) for p in system.get("parts", []))
    return {
        "candidates": [
            {"content": {"parts": [part], "role": "model"}, "finishReason": "STOP", "index": 0}
        ],
        "usageMetadata": {
            "promptTokenCount": prompt,
            "candidatesTokenCount": output,
            "totalTokenCount": prompt + output,
        },
        "modelVersion": model + "-001",
        "responseId": "resp-fake",
    }


def fake_gemini(
    api_key: str | None = None, *, port: int = 0, stream_delay: float = 0.0
) -> FakeServer[GeminiBackend]:
    """The fake, not yet started: use it as a context manager."""
    return FakeServer(GeminiBackend(api_key, stream_delay), port=port)


if __name__ == "__main__":
    main(GeminiBackend, "Fake Gemini API server")
