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

import argparse
import asyncio
import json
import signal
import threading
import time
import uuid
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from gateway.headers import Headers

_CHAT_ARGS = {
    "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens",
    "temperature", "top_p", "n", "stop", "presence_penalty", "frequency_penalty", "logit_bias",
    "logprobs", "top_logprobs", "user", "seed", "tools", "tool_choice", "parallel_tool_calls",
    "response_format", "metadata", "store", "service_tier", "modalities", "audio",
    "reasoning_effort", "prediction", "functions", "function_call",
}  # fmt: skip
_COMPLETION_ARGS = {
    "model", "prompt", "stream", "stream_options", "max_tokens", "temperature", "top_p", "n",
    "stop", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "user", "seed",
    "echo", "best_of", "suffix",
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class RecordedRequest:
    method: str
    path: str
    query: str
    headers: Headers
    body: bytes
    json: Any
    """The parsed JSON body, or None if it was not JSON."""


@dataclass(frozen=True, slots=True)
class CannedResponse:
    status: int
    """0: answer normally (after `delay`)."""
    body: bytes
    headers: tuple[tuple[str, str], ...]
    delay: float = 0.0
    """Seconds to wait before answering."""
    drop: bool = False
    """Close the connection instead of answering."""


def _error(status: int, message: str, kind: str, code: str | None = None) -> web.Response:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return web.json_response(body, status=status)


class _Backend:
    """The request handling shared by the in-thread fake and the process."""

    def __init__(self, api_key: str | None, stream_delay: float) -> None:
        self.api_key = api_key
        self.stream_delay = stream_delay
        self.lock = threading.Lock()
        self.requests: list[RecordedRequest] = []
        self.queued: list[CannedResponse] = []

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/completions", self.completions)
        return app

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, chat=True)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._serve(request, chat=False)

    async def _serve(self, request: web.Request, chat: bool) -> web.StreamResponse:
        raw = await request.read()
        try:
            doc: Any = json.loads(raw)
        except ValueError:
            doc = None
        with self.lock:
            self.requests.append(
                RecordedRequest(
                    request.method,
                    request.path,
                    request.query_string,
                    Headers(request.headers.items()),
                    raw,
                    doc,
                )
            )
            canned = self.queued.pop(0) if self.queued else None
        if canned is not None:
            if canned.delay:
                await asyncio.sleep(canned.delay)
            if canned.drop:
                assert request.transport is not None
                request.transport.abort()
                raise asyncio.CancelledError  # nothing more to send on a dead connection
            if canned.status:
                return web.Response(status=canned.status, body=canned.body, headers=canned.headers)
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
        unknown = sorted(set(doc) - (_CHAT_ARGS if chat else _COMPLETION_ARGS))
        if unknown:
            msg = f"Unrecognized request argument supplied: {unknown[0]}"
            return _error(400, msg, "invalid_request_error")
        if not isinstance(doc.get("model"), str) or not doc["model"]:
            return _error(400, "you must provide a model parameter", "invalid_request_error")
        prompt = _last_user_text(doc.get("messages")) if chat else doc.get("prompt")
        if not isinstance(prompt, str):
            field = "messages" if chat else "prompt"
            return _error(400, f"'{field}' is a required property", "invalid_request_error")
        reply = f"Hello! You said: {prompt}"
        usage = {
            "prompt_tokens": _prompt_words(doc, chat),
            "completion_tokens": len(reply.split()),
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
        words = reply.split(" ")
        pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
        choices: list[dict[str, Any]] = []
        if chat:
            choices.append(_chat_delta({"role": "assistant", "content": ""}, None))
            choices += [_chat_delta({"content": piece}, None) for piece in pieces]
            choices.append(_chat_delta({}, "stop"))
        else:
            choices += [_text_delta(piece, None) for piece in pieces]
            choices.append(_text_delta("", "stop"))
        for choice in choices:
            chunk: dict[str, Any] = {**base, "choices": [choice]}
            if include_usage:
                chunk["usage"] = None
            await self._event(response, json.dumps(chunk))
        if include_usage:
            await self._event(response, json.dumps({**base, "choices": [], "usage": usage}))
        await self._event(response, "[DONE]")
        await response.write_eof()
        return response

    async def _event(self, response: web.StreamResponse, data: str) -> None:
        await response.write(f"data: {data}\n\n".encode())
        if self.stream_delay:
            await asyncio.sleep(self.stream_delay)


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


class FakeOpenAI:
    """The fake served from a background thread on 127.0.0.1 (ephemeral port by default)."""

    def __init__(
        self, api_key: str | None = None, *, port: int = 0, stream_delay: float = 0.0
    ) -> None:
        self._backend = _Backend(api_key, stream_delay)
        self._port = port
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.url = ""

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received so far, oldest first (a copy)."""
        with self._backend.lock:
            return list(self._backend.requests)

    def queue_response(
        self, status: int, body: object, headers: dict[str, str] | None = None
    ) -> None:
        """Answer the next request with `status` and `body` (bytes as-is, else JSON)."""
        if isinstance(body, bytes):
            data, content_type = body, "text/plain"
        else:
            data, content_type = json.dumps(body).encode(), "application/json"
        merged = {"Content-Type": content_type, **(headers or {})}
        with self._backend.lock:
            self._backend.queued.append(CannedResponse(status, data, tuple(merged.items())))

    def queue_stall(self, seconds: float) -> None:
        """Make the next request wait `seconds` before it is answered normally."""
        with self._backend.lock:
            self._backend.queued.append(CannedResponse(0, b"", (), delay=seconds))

    def queue_drop(self) -> None:
        """Close the next request's connection without answering."""
        with self._backend.lock:
            self._backend.queued.append(CannedResponse(0, b"", (), drop=True))

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="fake-openai", daemon=True)
        self._thread.start()
        self._ready.wait(10)
        if self._error is not None or not self.url:
            raise RuntimeError("fake OpenAI server failed to start") from self._error

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None

    def __enter__(self) -> FakeOpenAI:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported to start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        runner = await start_runner(self._backend, "127.0.0.1", self._port)
        self.url = f"http://127.0.0.1:{bound_port(runner)}"
        self._ready.set()
        try:
            await self._stop.wait()
        finally:
            await runner.cleanup()


async def start_runner(backend: _Backend, host: str, port: int) -> web.AppRunner:
    runner = web.AppRunner(backend.app(), access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def bound_port(runner: web.AppRunner) -> int:
    address = runner.addresses[0]
    return int(address[1])


async def _serve_forever(port: int, api_key: str | None, stream_delay: float) -> None:
    runner = await start_runner(_Backend(api_key, stream_delay), "127.0.0.1", port)
    print(f"listening on http://127.0.0.1:{bound_port(runner)}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI API server")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--api-key", default=None)
    parser.add_argument("--stream-delay", type=float, default=0.0)
    args = parser.parse_args(argv)
    asyncio.run(_serve_forever(args.port, args.api_key, args.stream_delay))


if __name__ == "__main__":
    main()
