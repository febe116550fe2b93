"""A real HTTP fake of the OpenAI API, written from OpenAI's API reference.

Endpoints: `POST /v1/chat/completions` and `POST /v1/completions`, each JSON or SSE
(`"stream": true`; with `stream_options.include_usage` a last chunk carries usage). The answer
echoes the prompt: `Hello! You said: <last user message or prompt>`. Token counts are word counts.
If an API key is configured, requests without `Authorization: Bearer <key>` get OpenAI's 401
body. Like OpenAI, unknown arguments such as `top_k` are rejected with 400. Every request is
recorded; `queue_response` makes the next request get a canned answer instead, `queue_stall`
makes it wait before answering (to trip a read timeout) and `queue_drop` closes its connection
without any answer.

In-process: `with FakeOpenAI(api_key="sk-up") as fake: fake.url; fake.requests`.
As a process: `python -m tests.fakes.openai_server --port N [--api-key K]`.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from aiohttp import web

from tests.fakes.harness import BODY, AppBackend, FakeServer, Handler, main, pieces, reply_to, words
from tests.fakes.openai_compat import CHAT_ARGS, COMPLETION_ARGS

_CHAT_ARGS = CHAT_ARGS | {
    "modalities", "audio", "reasoning_effort", "prediction", "functions", "function_call",
}  # fmt: skip


def _error(status: int, message: str, kind: str, code: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status)


class OpenAIBackend(AppBackend):
    """The chat and text completions of OpenAI's API at `/v1`."""

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("POST", "/v1/chat/completions", self.chat),
            ("POST", "/v1/completions", self.completions),
        ]

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, chat=True)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, chat=False)

    async def _serve(self, request: web.Request, chat: bool) -> web.StreamResponse:
        doc = request[BODY]
        denied = self._check_key(request.headers.get("Authorization"))
        if denied is not None:
            return denied
        if not isinstance(doc, dict):
            return _error(
                400,
                "We could not parse the JSON body of your request. (HINT: This likely means "
                "you aren't using your HTTP library correctly. The OpenAI API expects a JSON "
                "payload, but what was sent was not valid JSON.",
                "invalid_request_error",
            )
        unknown = sorted(set(doc) - (_CHAT_ARGS if chat else COMPLETION_ARGS))
        if unknown:
            msg = f"Unrecognized request argument supplied: {unknown[0]}"
            return _error(400, msg, "invalid_request_error")
        if not isinstance(doc.get("model"), str) or not doc["model"]:
            return _error(400, "you must provide a model parameter", "invalid_request_error")
        prompt = _last_user_text(doc.get("messages")) if chat else doc.get("prompt")
        if not isinstance(prompt, str):
            field = "messages" if chat else "prompt"
            return _error(400, f"'{field}' is a required property", "invalid_request_error")
        reply = reply_to(prompt)
        usage = {
            "prompt_tokens": _prompt_words(doc, chat),
            "completion_tokens": words(reply),
        }
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        if doc.get("stream") is True:
            return await self._stream(request, doc, chat, reply, usage)
        return web.json_response(_answer(doc["model"], chat, reply, usage), headers=_HEADERS)

    def _check_key(self, authorization: str | None) -> web.Response | None:
        if self.api_key is None or authorization == f"Bearer {self.api_key}":
            return None
        if not authorization:
            return _error(
                401,
                "You didn't provide an API key. You need to provide your API key in an "
                "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY), "
                "or as the password field (with blank username) if you're accessing the API "
                "from your browser and are prompted for a username and password. You can "
                "obtain an API key from https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
            )
        given = authorization.removeprefix("Bearer ")
        masked = given[:3] + "*" * max(0, len(given) - 7) + given[-4:]
        return _error(
            401,
            f"Incorrect API key provided: {masked}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        )

    async def _stream(
        self, request: web.Request, doc: dict[str, Any], chat: bool, reply: str, usage: object
    ) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={**_HEADERS, "Content-Type": "text/event-stream; charset=utf-8"}
        )
        await response.prepare(request)
        options = doc.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        ident = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]
        base = {
            "id": ident,
            "object": "chat.completion.chunk" if chat else "text_completion",
            "created": int(time.time()),
            "model": doc["model"],
        }
        choices: list[dict[str, Any]] = []
        if chat:
            choices.append(_chat_delta({"role": "assistant", "content": ""}, None))
            choices += [_chat_delta({"content": piece}, None) for piece in pieces(reply)]
            choices.append(_chat_delta({}, "stop"))
        else:
            choices += [_text_delta(piece, None) for piece in pieces(reply)]
            choices.append(_text_delta("", "stop"))
        for choice in choices:
            chunk: dict[str, Any] = {**base, "choices": [choice]}
            if include_usage:
                chunk["usage"] = None
            await self.sse_data(response, json.dumps(chunk))
        if include_usage:
            await self.sse_data(response, json.dumps({**base, "choices": [], "usage": usage}))
        await self.sse_data(response, "[DONE]")
        await response.write_eof()
        return response


_HEADERS = {
    "openai-processing-ms": "12",
    "x-request-id": "req_fake",
    # Real answers carry Cloudflare cookies; gateways are expected to drop them.
    "Set-Cookie": "__cf_bm=fake-cookie; path=/; HttpOnly; Secure",
}


def _chat_delta(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}


def _text_delta(text: str, finish: str | None) -> dict[str, Any]:
    return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}


def _answer(model: str, chat: bool, reply: str, usage: object) -> dict[str, Any]:
    if chat:
        message = {"role": "assistant", "content": reply, "refusal": None}
        choice: dict[str, Any] = {
            "index": 0,
            "message": message,
            "logprobs": None,
            "finish_reason": "stop",
        }
        kind, prefix = "chat.completion", "chatcmpl-"
    else:
        choice = {"text": reply, "index": 0, "logprobs": None, "finish_reason": "stop"}
        kind, prefix = "text_completion", "cmpl-"
    return {
        "id": prefix + uuid.uuid4().hex[:24],
        "object": kind,
        "created": int(time.time()),
        "model": model,
        "choices": [choice],
        "usage": usage,
    }


def _text_of(content: object) -> str | None:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # content parts: [{"type":"text","text":...}, ...]
        texts = [p.get("text") for p in content if isinstance(p, dict)]
        return " ".join(t for t in texts if isinstance(t, str))
    return None


def _last_user_text(messages: object) -> str | None:
    if not isinstance(messages, list) or not messages:
        return None
    for message in reversed(messages):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content")) or ""
    return ""


def _prompt_words(doc: dict[str, Any], chat: bool) -> int:
    if not chat:
        return len(str(doc.get("prompt", "")).split())
    return sum(
        len((_text_of(m.get("content")) or "").split())
        for m in doc.get("messages", [])
        if isinstance(m, dict)
    )


class FakeOpenAI(FakeServer[OpenAIBackend]):
    """The fake served from a background thread on 127.0.0.1 (ephemeral port by default)."""

    def __init__(
        self, api_key: str | None = None, *, port: int = 0, stream_delay: float = 0.0
    ) -> None:
        super().__init__(OpenAIBackend(api_key, stream_delay), port=port)


if __name__ == "__main__":
    main(OpenAIBackend, "Fake OpenAI API server")
