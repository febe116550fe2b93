"""Self-hosted Llama 2 family models (Kong's `drivers/llama2.lua`), by `llama2_format`:
`openai` (an OpenAI-compatible server such as vLLM or llama.cpp), `ollama`, or `raw`
(Hugging Face text-generation-inference: an `[INST]` prompt in, `generated_text` out).
`model.options.upstream_url` is required: there is no public endpoint."""

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
    encode,
    json_object,
    text_of,
)
from gateway.llm.providers.ollama import OllamaDriver
from gateway.llm.providers.openai import OpenAIDriver

if TYPE_CHECKING:
    from gateway.llm.schema import ModelOptions


class Llama2OpenAIDriver(OpenAIDriver):
    name = "llama2"

    def default_url(
        self, route_type: str, model: str, options: ModelOptions, stream: bool
    ) -> UpstreamURL | None:
        return None


class Llama2OllamaDriver(OllamaDriver):
    name = "llama2"


class Llama2RawDriver(Driver):
    name = "llama2"
    route_types = frozenset({"llm/v1/chat", "llm/v1/completions", "preserve"})

    def default_url(
        self, route_type: str, model: str, options: ModelOptions, stream: bool
    ) -> UpstreamURL | None:
        return None

    def to_format(self, body: dict[str, Any], model: str, route_type: str) -> dict[str, Any]:
        if route_type == "llm/v1/completions":
            inputs = f"<s>[INST] {body.get('prompt', '')} [/INST]"
        else:
            inputs = _inst_prompt(body.get("messages") or [])
        parameters = {
            "max_new_tokens": body.get("max_tokens"),
            "top_p": body.get("top_p"),
            "top_k": body.get("top_k"),
            "temperature": body.get("temperature"),
        }
        parameters = {k: v for k, v in parameters.items() if v is not None}
        return {"inputs": inputs, "parameters": parameters, "stream": bool(body.get("stream"))}

    def from_format(self, body: bytes, route_type: str, model: str = "") -> ParsedResponse:
        if route_type == "preserve":
            return ParsedResponse(body, TokenUsage(), None)
        text = _generated_text(body)
        if text is None:
            raise TransformError(f"'generated_text' not in llama2://{route_type} response")
        # The model echoes the prompt: the answer is what follows the last [/INST].
        answer = text.split("[/INST]")[-1].strip()
        if route_type == "llm/v1/completions":
            choice: dict[str, Any] = {"index": 0, "text": answer, "finish_reason": "stop"}
            kind = "text_completion"
        else:
            message = {"role": "assistant", "content": answer}
            choice = {"index": 0, "message": message, "finish_reason": "stop"}
            kind = "chat.completion"
        out = {
            "id": f"llama2-{time.time_ns():x}",
            "object": kind,
            "created": int(time.time()),
            "model": model,
            "choices": [choice],
        }
        return ParsedResponse(encode(out), TokenUsage(), model or None)

    def stream_event(
        self, data: str, route_type: str, state: StreamState | None = None
    ) -> StreamEvent:
        # text-generation-inference streams `data: {"token": {"text": ...}, ...}` events.
        state = state or StreamState(model="")
        doc = json_object(data)
        token = doc.get("token") if doc is not None else None
        if not isinstance(token, dict) or token.get("special"):
            return StreamEvent()
        piece = token.get("text")
        text = piece if isinstance(piece, str) else ""
        chat = route_type != "llm/v1/completions"
        chunks = [state.text_delta(text, chat=chat)]
        if doc is not None and doc.get("generated_text") is not None:
            chunks.append(state.chunk({}, "stop", chat=chat))
        return StreamEvent(text, chunks=tuple(chunks))


def _inst_prompt(messages: list[Any]) -> str:
    system = "\n".join(
        text_of(m.get("content"))
        for m in messages
        if isinstance(m, dict) and m.get("role") == "system"
    )
    turns: list[str] = []
    pending = f"<<SYS>>\n{system}\n<</SYS>>\n\n" if system else ""
    for message in messages:
        if not isinstance(message, dict) or message.get("role") == "system":
            continue
        text = text_of(message.get("content"))
        if message.get("role") == "assistant":
            turns.append(f" {text} </s>")
        else:
            turns.append(f"<s>[INST] {pending}{text} [/INST]")
            pending = ""
    return "".join(turns)


def _generated_text(body: bytes) -> str | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    if isinstance(doc, dict) and isinstance(doc.get("data"), list):
        doc = doc["data"]
    if isinstance(doc, list) and doc and isinstance(doc[0], dict):
        doc = doc[0]
    text = doc.get("generated_text") if isinstance(doc, dict) else None
    return text if isinstance(text, str) else None
