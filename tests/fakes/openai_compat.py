"""A real HTTP fake of the OpenAI API family, written from OpenAI's API reference: chat
completions (with tool calls), completions and embeddings, JSON or SSE. Azure OpenAI and
Mistral's fakes are this with their own paths, auth and error shapes (`azure_openai_server`,
`mistral_server`); `tests.fakes.openai_server` stays the minimal chat-only OpenAI fake.

Like OpenAI it rejects unknown arguments (e.g. `top_k`) and a missing model or prompt.
Answers echo the last user text; when tools are offered (`tool_choice` not "none") and the last
message is not a tool result, it calls the first tool. Embeddings are 3 numbers per input
(length, words, 0.5), as floats or base64 (the `openai` SDK asks for base64 by default).

In-process: `with fake_openai(api_key="k") as fake: ...`.
As a process: `python -m tests.fakes.openai_compat --port N [--api-key K]`.
"""

from __future__ import annotations

import base64
import json
import struct
import time
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

CHAT_ARGS = {
    "model", "messages", "stream", "stream_options", "max_tokens", "max_completion_tokens",
    "temperature", "top_p", "n", "stop", "presence_penalty", "frequency_penalty", "logit_bias",
    "logprobs", "top_logprobs", "user", "seed", "tools", "tool_choice", "parallel_tool_calls",
    "response_format", "metadata", "store", "service_tier",
}  # fmt: skip
COMPLETION_ARGS = {
    "model", "prompt", "stream", "stream_options", "max_tokens", "temperature", "top_p", "n",
    "stop", "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "user", "seed",
    "echo", "best_of", "suffix",
}  # fmt: skip
EMBEDDING_ARGS = {"model", "input", "encoding_format", "dimensions", "user"}


class OpenAICompatBackend(AppBackend):
    """OpenAI's API at `/v1`; subclasses change `prefix`, `check_auth` and `error`."""

    prefix = "/v1"
    needs_model = True

    def routes(self) -> list[tuple[str, str, Handler]]:
        return [
            ("POST", self.prefix + "/chat/completions", self.chat),
            ("POST", self.prefix + "/completions", self.completions),
            ("POST", self.prefix + "/embeddings", self.embeddings),
        ]

    def error(self, status: int, message: str, code: str | None = None) -> web.Response:
        body = {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": None,
                "code": code,
            }
        }
        return web.json_response(body, status=status)

    def check_auth(self, request: web.Request) -> web.Response | None:
        if self.api_key is None:
            return None
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            return self.error(401, "Incorrect API key provided.", "invalid_api_key")
        return None

    def _body(self, request: web.Request, allowed: set[str]) -> dict[str, Any] | web.Response:
        denied = self.check_auth(request)
        if denied is not None:
            return denied
        doc = request[BODY]
        if not isinstance(doc, dict):
            return self.error(400, "We could not parse the JSON body of your request.")
        unknown = sorted(set(doc) - allowed)
        if unknown:
            return self.error(400, f"Unrecognized request argument supplied: {unknown[0]}")
        if self.needs_model and not (isinstance(doc.get("model"), str) and doc["model"]):
            return self.error(400, "you must provide a model parameter")
        return doc

    async def chat(self, request: web.Request) -> web.StreamResponse:
        doc = self._body(request, CHAT_ARGS)
        if isinstance(doc, web.Response):
            return doc
        messages = doc.get("messages")
        if not isinstance(messages, list) or not messages:
            return self.error(400, "'messages' is a required property")
        last = messages[-1]
        tools = doc.get("tools") or []
        message: dict[str, Any] = {"role": "assistant", "content": None, "refusal": None}
        if tools and last.get("role") != "tool" and doc.get("tool_choice") != "none":
            function = tools[0]["function"]
            arguments = json.dumps(tool_input(function.get("parameters"), _text(last)))
            call_id = "call_" + uuid.uuid4().hex[:24]
            message["tool_calls"] = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": function["name"], "arguments": arguments},
                }
            ]
            finish, output = "tool_calls", words(arguments)
        else:
            said = _text(last)
            message["content"] = (
                f"Tool said: {said}" if last.get("role") == "tool" else reply_to(said)
            )
            finish, output = "stop", words(message["content"])
        prompt = sum(words(_text(m)) for m in messages if isinstance(m, dict))
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": output,
            "total_tokens": prompt + output,
        }
        base = _base(doc, "chat.completion", "chatcmpl-")
        if doc.get("stream") is True:
            deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
            if message.get("tool_calls"):
                call = message["tool_calls"][0]
                head = {
                    **call,
                    "index": 0,
                    "function": {"name": call["function"]["name"], "arguments": ""},
                }
                deltas.append({"tool_calls": [head]})
                arguments = call["function"]["arguments"]
                deltas.append({"tool_calls": [{"index": 0, "function": {"arguments": arguments}}]})
            else:
                deltas += [{"content": p} for p in pieces(message["content"])]
            choices = [_choice(d, None) for d in deltas] + [_choice({}, finish)]
            base["object"] = "chat.completion.chunk"
            return await self._stream(request, doc, base, choices, usage)
        choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish}
        return web.json_response({**base, "choices": [choice], "usage": usage})

    async def completions(self, request: web.Request) -> web.StreamResponse:
        doc = self._body(request, COMPLETION_ARGS)
        if isinstance(doc, web.Response):
            return doc
        prompt = doc.get("prompt")
        if not isinstance(prompt, str):
            return self.error(400, "'prompt' is a required property")
        text = reply_to(prompt)
        usage = {
            "prompt_tokens": words(prompt),
            "completion_tokens": words(text),
            "total_tokens": words(prompt) + words(text),
        }
        base = _base(doc, "text_completion", "cmpl-")
        if doc.get("stream") is True:
            choices = [_text_choice(p, None) for p in pieces(text)] + [_text_choice("", "stop")]
            return await self._stream(request, doc, base, choices, usage)
        return web.json_response({**base, "choices": [_text_choice(text, "stop")], "usage": usage})

    async def embeddings(self, request: web.Request) -> web.StreamResponse:
        doc = self._body(request, EMBEDDING_ARGS)
        if isinstance(doc, web.Response):
            return doc
        inputs = doc.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs:
            return self.error(400, "'input' is a required property")
        encoding = doc.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            return self.error(400, f"'{encoding}' is not one of ['float', 'base64']")
        data = []
        tokens = 0
        for i, item in enumerate(inputs):
            text = item if isinstance(item, str) else " ".join(str(t) for t in item)
            tokens += words(text)
            vector = [float(len(text)), float(words(text)), 0.5]
            value: object = vector
            if encoding == "base64":
                value = base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
            data.append({"object": "embedding", "index": i, "embedding": value})
        usage = {"prompt_tokens": tokens, "total_tokens": tokens}
        return web.json_response(
            {"object": "list", "data": data, "model": doc.get("model"), "usage": usage}
        )

    async def _stream(
        self,
        request: web.Request,
        doc: dict[str, Any],
        base: dict[str, Any],
        choices: list[dict[str, Any]],
        usage: dict[str, int],
    ) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream; charset=utf-8"})
        await response.prepare(request)
        options = doc.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        for choice in choices:
            await self.sse_data(response, json.dumps({**base, "choices": [choice]}))
        if include_usage:
            await self.sse_data(response, json.dumps({**base, "choices": [], "usage": usage}))
        await self.sse_data(response, "[DONE]")
        await response.write_eof()
        return response


def _base(doc: dict[str, Any], kind: str, prefix: str) -> dict[str, Any]:
    return {
        "id": prefix + uuid.uuid4().hex[:24],
        "object": kind,
        "created": int(time.time()),
        "model": doc.get("model") or "deployment-model",
    }


def _choice(delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}


def _text_choice(text: str, finish: str | None) -> dict[str, Any]:
    return {"text": text, "index": 0, "logprobs": None, "finish_reason": finish}


def _text(message: object) -> str:
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(p.get("text", "") for p in content if isinstance(p, dict))
    return ""


def fake_openai(
    api_key: str | None = None, *, port: int = 0, stream_delay: float = 0.0
) -> FakeServer[OpenAICompatBackend]:
    """The fake, not yet started: use it as a context manager."""
    return FakeServer(OpenAICompatBackend(api_key, stream_delay), port=port)


if __name__ == "__main__":
    main(OpenAICompatBackend, "Fake OpenAI API server (chat, completions, embeddings)")
