"""A real HTTP fake of Cohere's v1 API, written from Cohere's API reference: `POST /v1/chat`
(`message` + `chat_history`) and `POST /v1/generate`, JSON or streamed as newline-delimited
JSON events (`stream-start`, `text-generation`, `stream-end` with the final response and its
`meta.billed_units`). Bearer auth; unknown fields and a missing `message`/`prompt` are
rejected. Answers echo the last message. Token counts are word counts.

In-process: `with fake_cohere(api_key="k") as fake: ...`.
As a process: `python -m tests.fakes.cohere_server --port N [--api-key K]`.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from aiohttp import web

from tests.fakes.harness import BODY, AppBackend, FakeServer, Handler, main, pieces, reply_to, words

_COMMON = {
    "model", "stream", "max_tokens", "temperature", "p", "k", "seed", "stop_sequences",
    "frequency_penalty", "presence_penalty",
}  # fmt: skip
_CHAT_FIELDS = _COMMON | {"message", "chat_history", "preamble", "conversation_id", "tools"}
_GENERATE_FIELDS = _COMMON | {"prompt", "num_generations", "truncate", "return_likelihoods"}
_ROLES = {"USER", "CHATBOT", "SYSTEM", "TOOL"}


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"message": message}, status=status)


class CohereBackend(AppBackend):
    def routes(self) -> list[tuple[str, str, Handler]]:
        return [("POST", "/v1/chat", self.chat), ("POST", "/v1/generate", self.generate)]

    def _body(self, request: web.Request, allowed: set[str]) -> dict[str, Any] | web.Response:
        expected = f"Bearer {self.api_key}"
        if self.api_key is not None and request.headers.get("Authorization") != expected:
            return _error(401, "invalid api token")
        doc = request[BODY]
        if not isinstance(doc, dict):
            return _error(400, "invalid request: could not parse the request body")
        unknown = sorted(set(doc) - allowed)
        if unknown:
            return _error(
                400, f"invalid request: unknown field: parameter {unknown[0]} is not a valid field"
            )
        return doc

    async def chat(self, request: web.Request) -> web.StreamResponse:
        doc = self._body(request, _CHAT_FIELDS)
        if isinstance(doc, web.Response):
            return doc
        message = doc.get("message")
        if not isinstance(message, str) or not message:
            return _error(400, "invalid request: message must be at least 1 token long.")
        history = doc.get("chat_history") or []
        for turn in history:
            if not isinstance(turn, dict) or turn.get("role") not in _ROLES:
                return _error(
                    400,
                    "invalid request: chat_history role must be one of USER, CHATBOT, SYSTEM, TOOL",
                )
        text = reply_to(message)
        prompt = words(message) + sum(words(str(t.get("message", ""))) for t in history)
        generation = str(uuid.uuid4())
        final = {
            "response_id": str(uuid.uuid4()),
            "text": text,
            "generation_id": generation,
            "chat_history": [
                *history,
                {"role": "USER", "message": message},
                {"role": "CHATBOT", "message": text},
            ],
            "finish_reason": "COMPLETE",
            "meta": _meta(prompt, words(text)),
        }
        if doc.get("stream") is not True:
            return web.json_response(final)
        events: list[dict[str, Any]] = [
            {"is_finished": False, "event_type": "stream-start", "generation_id": generation}
        ]
        events += [
            {"is_finished": False, "event_type": "text-generation", "text": p} for p in pieces(text)
        ]
        events.append(
            {
                "is_finished": True,
                "event_type": "stream-end",
                "response": final,
                "finish_reason": "COMPLETE",
            }
        )
        return await self._stream(request, events)

    async def generate(self, request: web.Request) -> web.StreamResponse:
        doc = self._body(request, _GENERATE_FIELDS)
        if isinstance(doc, web.Response):
            return doc
        prompt = doc.get("prompt")
        if not isinstance(prompt, str) or not prompt:
            return _error(400, "invalid request: prompt must be at least 1 token long.")
        text = reply_to(prompt)
        final = {
            "id": str(uuid.uuid4()),
            "generations": [{"id": str(uuid.uuid4()), "text": text, "finish_reason": "COMPLETE"}],
            "prompt": prompt,
            "meta": _meta(words(prompt), words(text)),
        }
        if doc.get("stream") is not True:
            return web.json_response(final)
        events: list[dict[str, Any]] = [{"text": p, "is_finished": False} for p in pieces(text)]
        events.append({"is_finished": True, "finish_reason": "COMPLETE", "response": final})
        return await self._stream(request, events)

    async def _stream(
        self, request: web.Request, events: list[dict[str, Any]]
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/stream+json"})
        await response.prepare(request)
        for event in events:
            await response.write(json.dumps(event).encode() + b"\n")
            await self.pause()
        await response.write_eof()
        return response


def _meta(prompt: int, output: int) -> dict[str, Any]:
    return {
        "api_version": {"version": "1"},
        "billed_units": {"input_tokens": prompt, "output_tokens": output},
        "tokens": {"input_tokens": prompt + 60, "output_tokens": output},
    }


def fake_cohere(
    api_key: str | None = None, *, port: int = 0, stream_delay: float = 0.0
) -> FakeServer[CohereBackend]:
    """The fake, not yet started: use it as a context manager."""
    return FakeServer(CohereBackend(api_key, stream_delay), port=port)


if __name__ == "__main__":
    main(CohereBackend, "Fake Cohere API server")
