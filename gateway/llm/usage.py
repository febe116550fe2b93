"""Per-request LLM accounting: tokens, cost and latency, serialized as Kong's `ai.proxy.*` log
fields (Kong's `serialize-analytics` / `observability`)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from gateway.llm.providers.base import TokenUsage


@dataclass(slots=True)
class UsageMeter:
    """Collects what one proxied LLM request used.

    `started` and `finish(now)` take the same clock (seconds, e.g. time.monotonic()).
    Counts the provider reports win; missing counts are estimated as Kong does: prompt tokens
    from the request's word count, completion tokens as a quarter of the streamed text length.
    """

    provider: str
    request_model: str | None
    started: float
    stream: bool
    prompt_tokens_estimate: int = 0
    input_cost: float | None = None
    output_cost: float | None = None
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    total_tokens: int | None = None
    response_model: str | None = None
    ended: float | None = None
    _text: list[str] = field(default_factory=list)

    def add_usage(self, usage: TokenUsage) -> None:
        """Record reported counts (OpenAI reports totals once, so later values replace)."""
        if usage.prompt_tokens is not None:
            self.prompt_tokens = usage.prompt_tokens
        if usage.completion_tokens is not None:
            self.completion_tokens = usage.completion_tokens
        if usage.total_tokens is not None:
            self.total_tokens = usage.total_tokens

    def add_text(self, text: str) -> None:
        """Record streamed answer text (for the completion estimate and the payload log)."""
        if text:
            self._text.append(text)

    @property
    def text(self) -> str:
        return "".join(self._text)

    def finish(self, now: float) -> None:
        """Mark the end of the answer; the first call wins."""
        if self.ended is None:
            self.ended = now

    def counts(self) -> tuple[int, int, int]:
        """Prompt, completion and total tokens: the reported counts, else Kong's estimates
        (only for streams; a buffered answer without usage counts 0)."""
        prompt = self.prompt_tokens
        if prompt is None:
            prompt = self.prompt_tokens_estimate if self.stream else 0
        completion = self.completion_tokens
        if completion is None:
            completion = math.ceil(len(self.text.strip()) / 4) if self.stream else 0
        total = self.total_tokens if self.total_tokens is not None else prompt + completion
        return prompt, completion, total

    def cost(self) -> float:
        """`(prompt * input_cost + completion * output_cost) / 1e6`; 0 without prices."""
        if self.input_cost is None and self.output_cost is None:
            return 0.0
        prompt, completion, _ = self.counts()
        return (prompt * (self.input_cost or 0) + completion * (self.output_cost or 0)) / 1e6

    def latency_ms(self, now: float) -> int:
        return max(0, round(((self.ended or now) - self.started) * 1000))

    def log_fields(self, plugin_id: str, now: float) -> dict[str, Any]:
        """The `ai.proxy.meta` and `ai.proxy.usage` log fields (dotted keys)."""
        latency_ms = self.latency_ms(now)
        prompt, completion, total = self.counts()
        request_model = self.request_model or "UNSPECIFIED"
        return {
            "ai.proxy.meta": {
                "plugin_id": plugin_id,
                "provider_name": self.provider,
                "request_model": request_model,
                "response_model": self.response_model or request_model,
                "llm_latency": latency_ms,
                "request_mode": "stream" if self.stream else "oneshot",
            },
            "ai.proxy.usage": {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": total,
                "time_per_token": latency_ms / completion if completion else 0,
                "cost": self.cost(),
            },
        }

    def record(self, now: float) -> dict[str, Any]:
        """Lockgate's always-on compact record, `ctx.log_fields["lockgate.llm"]`, written
        whatever `logging.log_statistics` says, for the analytics pipeline."""
        prompt, completion, total = self.counts()
        return {
            "provider": self.provider,
            "request_model": self.request_model,
            "response_model": self.response_model or self.request_model,
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": total,
            "cost": self.cost(),
            "latency_ms": self.latency_ms(now),
            "stream": self.stream,
        }
