"""The Cohere driver: the v1 Chat API (`/v1/chat`) and Generate API (`/v1/generate`), whose
streams are newline-delimited JSON events (Kong's `drivers/cohere.lua`)."""

from __future__ import annotations

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
    json_object,
    openai_answer,
    text_of,
    usage_total,
)

if TYPE_CHECKING:
    from gateway.llm.schema import ModelOptions

_PATHS = {"llm/v1/chat": "/v1/chat", "llm/v1/completions": "/v1/generate"}
_FINISH_REASONS = {"COMPLETE": "stop", "MAX_TOKENS": "length", "STOP_SEQUENCE": "stop"}
_ROLES = {"assistant": "CHATBOT", "system": "SYSTEM", "developer": "SYSTEM"}


class CohereDriver(Driver):
    name = "cohere"
    route_types = frozenset({"llm/v1/chat", "llm/v1/completions", "preserve"})

    def default_url(
        self, route_type: str, model: str, options: ModelOptions, stream: bool
    ) -> UpstreamURL | None:
        return UpstreamURL("https", "api.cohere.com", 443, _PATHS.get(route_type, "/"))

    def to_format(self, body: dict[str, Any], model: str, route_type: str) -> dict[str, Any]:
        out: dict[str, Any] = {"model": model, "stream": bool(body.get("stream"))}
        if route_type == "llm/v1/completions":
            out["prompt"] = body.get("prompt")
        else:
            messages = [m for m in body.get("messages") or [] if isinstance(m, dict)]
            *history, last = messages
            out["message"] = text_of(last.get("content"))
            if history:
                out["chat_history"] = [
                    {
                        "role": _ROLES.get(str(m.get("role")), "USER"),
                        "message": text_of(m.get("content")),
                    }
                    for m in history
                ]
        stop = body.get("stop")
        fields = {
            "max_tokens": body.get("max_tokens"),
            "temperature": body.get("temperature"),
            "p": body.get("top_p"),
            "k": body.get("top_k"),
            "seed": body.get("seed"),
            "stop_sequences": [stop] if isinstance(stop, str) else stop,
        }
        out.update({k: v for k, v in fields.items() if v is not None})
        return out

    def from_format(self, body: bytes, route_type: str, model: str = "") -> ParsedResponse:
        doc = json_object(body)
        if route_type == "preserve":
            doc = doc or {}
            return ParsedResponse(body, _usage(doc), None)
        if doc is None:
            raise TransformError("failed to decode cohere response")
        usage = _usage(doc)
        if route_type == "llm/v1/completions":
            generations = doc.get("generations")
            if not isinstance(generations, list):
                raise TransformError("'generations' not in cohere://llm/v1/completions response")
            choices: list[dict[str, Any]] = [
                {
                    "index": i,
                    "text": g.get("text", ""),
                    "logprobs": None,
                    "finish_reason": _finish(g.get("finish_reason")),
                }
                for i, g in enumerate(generations)
                if isinstance(g, dict)
            ]
            kind = "text_completion"
        else:
            if not isinstance(doc.get("text"), str):
                raise TransformError("'text' not in cohere://llm/v1/chat response")
            message = {"role": "assistant", "content": doc["text"]}
            finish = _finish(doc.get("finish_reason"))
            choices = [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}]
            kind = "chat.completion"
        ident = doc.get("response_id") or doc.get("id") or "cohere"
        out = openai_answer(ident, kind, 0, model, choices, usage)
        return ParsedResponse(out, usage, model or None)

    def stream_event(
        self, data: str, route_type: str, state: StreamState | None = None
    ) -> StreamEvent:
        state = state or StreamState(model="")
        doc = json_object(data)
        if doc is None:
            return StreamEvent()
        chat = route_type != "llm/v1/completions"
        kind = doc.get("event_type")
        if kind == "stream-start":
            state.id = str(doc.get("generation_id") or "")
            return StreamEvent(chunks=(state.text_delta("", chat=chat),) if chat else ())
        if doc.get("is_finished") is True or kind == "stream-end":
            response = doc.get("response") if isinstance(doc.get("response"), dict) else {}
            assert isinstance(response, dict)
            finish = _finish(doc.get("finish_reason"))
            chunk = state.chunk({}, finish, chat=chat)
            return StreamEvent(usage=_usage(response), done=True, chunks=(chunk,))
        text = doc.get("text")
        if isinstance(text, str) and kind in (None, "text-generation"):
            return StreamEvent(text, chunks=(state.text_delta(text, chat=chat),))
        return StreamEvent()


def _finish(reason: object) -> str:
    return _FINISH_REASONS.get(str(reason), "stop")


def _usage(doc: dict[str, Any]) -> TokenUsage:
    meta = doc.get("meta")
    units = meta.get("billed_units") if isinstance(meta, dict) else None
    if not isinstance(units, dict):
        return TokenUsage()
    return usage_total(count(units.get("input_tokens")), count(units.get("output_tokens")))
