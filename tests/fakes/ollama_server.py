"""A real HTTP fake of Ollama's API, written from Ollama's API docs: `POST /api/chat` (with
tool calls), `/api/generate` and `/api/embed`. As in Ollama, `stream` defaults to true and
streams are newline-delimited JSON (`application/x-ndjson`) whose last object has `done: true`
and the counts `prompt_eval_count` / `eval_count`; a missing model is 400, a model that is not
pulled 404. The models it "has" are given at start (default: llama2, mistral). Answers echo
the last user text. Token counts are word counts.

In-process: `with fake_ollama() as fake: ...`.
As a process: `python -m tests.fakes.ollama_server --port N`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
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

MODELS = ("llama2", "mistral")
_ROLES = {"system", "user", "assistant", "tool"}


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class OllamaBackend(AppBackend):
    models = MODELS

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("POST", "/api/chat", self.chat),
            ("POST", "/api/generate", self.generate),
            ("POST", "/api/embed", self.embed),
        ]

    def _body(self, request: web.Request) -> dict[str, Any] | web.Response:
        doc = request[BODY]
        if not isinstance(doc, dict):
            return _error(400, "invalid character looking for beginning of value")
        model = doc.get("model")
        if not isinstance(model, str) or not model:
            return _error(400, "model is required")
        if model.split(":")[0] not in self.models:
            return _error(404, f'model "{model}" not found, try pulling it first')
        return doc

    async def chat(self, request: web.Request) -> web.StreamResponse:
        doc = self._body(request)
        if isinstance(doc, web.Response):
            return doc
        messages = doc.get("messages")
        if not isinstance(messages, list):
            return _error(400, "messages is required")
        for message in messages:
            if not isinstance(message, dict) or message.get("role") not in _ROLES:
                return _error(400, "invalid message role")
            if not isinstance(message.get("content", ""), str):
                return _error(
                    400,
                    "json: cannot unmarshal array into Go struct field "
                    "Message.messages.content of type string",
                )
        last = messages[-1] if messages else {"role": "user", "content": ""}
        tools = doc.get("tools") or []
        reply: dict[str, Any] = {"role": "assistant", "content": ""}
        if tools and last.get("role") != "tool":
            function = tools[0]["function"]
            args = tool_input(function.get("parameters"), last.get("content", ""))
            reply["tool_calls"] = [{"function": {"name": function["name"], "arguments": args}}]
            output = words(json.dumps(args))
        else:
            said = last.get("content", "")
            reply["content"] = (
                f"Tool said: {said}" if last.get("role") == "tool" else reply_to(said)
            )
            output = words(reply["content"])
        prompt = sum(words(m.get("content", "")) for m in messages)
        final = {"done": True, "done_reason": "stop", **_counts(prompt, output)}
        if doc.get("stream", True) is False:
            return web.json_response({**_base(doc), "message": reply, **final})
        objects = [
            {**_base(doc), "message": {"role": "assistant", "content": p}, "done": False}
            for p in (pieces(reply["content"]) if reply["content"] else [])
        ]
        if reply.get("tool_calls"):
            objects.append({**_base(doc), "message": reply, "done": False})
        objects.append({**_base(doc), "message": {"role": "assistant", "content": ""}, **final})
        return await self._stream(request, objects)

    async def generate(self, request: web.Request) -> web.StreamResponse:
        doc = self._body(request)
        if isinstance(doc, web.Response):
            return doc
        prompt = doc.get("prompt", "")
        text = reply_to(prompt)
        final = {
            "done": True,
            "done_reason": "stop",
            "context": [1, 2, 3],
            **_counts(words(prompt), words(text)),
        }
        if doc.get("stream", True) is False:
            return web.json_response({**_base(doc), "response": text, **final})
        objects = [{**_base(doc), "response": p, "done": False} for p in pieces(text)]
        objects.append({**_base(doc), "response": "", **final})
        return await self._stream(request, objects)

    async def embed(self, request: web.Request) -> web.StreamResponse:
        doc = self._body(request)
        if isinstance(doc, web.Response):
            return doc
        inputs = doc.get("input")
        inputs = [inputs] if isinstance(inputs, str) else inputs
        if not isinstance(inputs, list):
            return _error(400, "invalid input type")
        vectors = [[float(len(t)), float(words(t)), 0.5] for t in inputs]
        count = sum(words(t) for t in inputs)
        return web.json_response(
            {"model": doc["model"], "embeddings": vectors, "prompt_eval_count": count}
        )

    async def _stream(
        self, request: web.Request, objects: list[dict[str, Any]]
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        for item in objects:
            await response.write(json.dumps(item).encode() + b"\n")
            await self.pause()
        await response.write_eof()
        return response


def _base(doc: dict[str, Any]) -> dict[str, Any]:
    return {"model": doc["model"], "created_at": datetime.now(UTC).isoformat()}


def _counts(prompt: int, output: int) -> dict[str, int]:
    return {
        "total_duration": 5_000_000,
        "load_duration": 1_000_000,
        "prompt_eval_count": prompt,
        "prompt_eval_duration": 1_000_000,
        "eval_count": output,
        "eval_duration": 2_000_000,
    }


def fake_ollama(*, port: int = 0, stream_delay: float = 0.0) -> FakeServer[OllamaBackend]:
    """The fake, not yet started: use it as a context manager."""
    return FakeServer(OllamaBackend(None, stream_delay), port=port)


if __name__ == "__main__":
    main(OllamaBackend, "Fake Ollama API server")
