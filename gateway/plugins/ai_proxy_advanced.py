"""ai-proxy-advanced: proxy OpenAI-format LLM requests to one of several provider targets.

Kong's behaviour (reference kong-plugins.md §3) per phase:

- access: pick a target (weighted round-robin), validate and normalize the client's body
  (400 `{"error":{"message":...}}` on failure), point `ctx.upstream` at the provider, and put the
  provider credentials on the request. Non-streaming answers are buffered so they can be checked.
- header_filter: on a 200 from the provider, add `X-Kong-LLM-Model`, drop `Set-Cookie`, force
  `text/event-stream` when streaming. Any other status passes through untouched.
- body_filter: check buffered answers (`choices` must be present, else Kong's 500 body) and read
  their usage; pass SSE through unchanged while counting its tokens.
- log: write `ai.proxy.*` log fields when the target's `logging` asks for them.

The contract gives header_filter no body, so a buffered answer is checked in body_filter, which
sets the 500 status on `ctx.response`. This relies on the proxy sending the head only after
body_filter when `buffer_response` is set (data_plane/proxy.py does, and recomputes
Content-Length); a proxy that streamed the head first would send the 500 body under a 200.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, field_validator

from gateway.context import Exit, RequestContext, ResponseHead
from gateway.llm.balancer import WeightedRoundRobin
from gateway.llm.providers import driver_for
from gateway.llm.providers.base import Driver, TransformError
from gateway.llm.request import LLMRequest, LLMRequestError, normalize_request, parse_body
from gateway.llm.schema import Balancer, Target
from gateway.llm.sse import SSEDecoder, SSEEvent
from gateway.llm.upstream import apply_auth, host_header, resolve_url
from gateway.llm.usage import UsageMeter
from gateway.plugins.base import BuildContext, Handler, Plugin, PluginConfig
from gateway.responses import JSON_CONTENT_TYPE, exit_json

_STATE_KEY = "ai-proxy-advanced"


class Config(PluginConfig):
    """ai-proxy-advanced config (Kong 3.12 field names and defaults)."""

    targets: list[Target] = Field(min_length=1)
    balancer: Balancer = Field(default_factory=Balancer)
    response_streaming: Literal["allow", "deny", "always"] = "allow"
    # Kong 3.13+ default (1 MiB; 0 = unlimited): 8 KiB refused ordinary chat histories.
    max_request_body_size: int = Field(default=1048576, ge=0)
    """Largest client body (bytes) that is read as an LLM request; 0 = unlimited."""
    model_name_header: bool = True
    llm_format: str = "openai"
    genai_category: str = "text/generation"
    embeddings: dict[str, Any] | None = None
    vectordb: dict[str, Any] | None = None

    @field_validator("llm_format")
    @classmethod
    def _llm_format(cls, value: str) -> str:
        if value != "openai":
            raise ValueError(f"llm_format '{value}' is not supported by Lockgate yet")
        return value

    @field_validator("genai_category")
    @classmethod
    def _genai_category(cls, value: str) -> str:
        if value != "text/generation":
            raise ValueError(f"genai_category '{value}' is not supported by Lockgate yet")
        return value

    @field_validator("embeddings", "vectordb")
    @classmethod
    def _semantic_only(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # Only the semantic algorithm uses these, and it is not implemented.
        if value is not None:
            raise ValueError("only used by the 'semantic' balancer, not supported by Lockgate yet")
        return value


@dataclass(slots=True)
class _Exchange:
    """One request's state between phases (kept in kong.ctx.plugin)."""

    target: Target
    driver: Driver
    request: LLMRequest
    meter: UsageMeter
    proxied: bool = False
    """header_filter saw the provider's answer."""
    transform: bool = False
    """The answer is a 200 this plugin reads (buffered check or SSE counting)."""
    decoder: SSEDecoder = field(default_factory=SSEDecoder)
    buffered: list[bytes] = field(default_factory=list)
    response_payload: str | None = None


class AiProxyAdvancedHandler(Handler):
    def __init__(
        self, config: Config, plugin_id: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._config = config
        self._plugin_id = plugin_id
        self._clock = clock
        self._targets = WeightedRoundRobin([(t, t.weight) for t in config.targets])

    async def access(self, ctx: RequestContext) -> Exit | None:
        config = self._config
        target = self._targets.pick()
        driver = driver_for(target.model.provider)
        request = ctx.request
        body = parse_body(
            request.body, request.headers.get("Content-Type"), config.max_request_body_size
        )
        try:
            llm = normalize_request(body, target, driver, config.response_streaming)
        except LLMRequestError as exc:
            return exit_json(exc.status, {"error": {"message": exc.message}})

        url = resolve_url(target, driver, llm.model or "", request.path)
        upstream = ctx.upstream
        upstream.scheme, upstream.host, upstream.port, upstream.path = (
            url.scheme,
            url.host,
            url.port,
            url.path,
        )
        upstream.host_header = host_header(url)
        if llm.body is not None:
            upstream.method = "POST"
            upstream.body = json.dumps(llm.body, ensure_ascii=False).encode()
            request.headers.set("Content-Type", "application/json")
            # The client's framing describes the client's body, not ours; the proxy frames ours.
            request.headers.remove("Content-Length")
            request.headers.remove("Transfer-Encoding")
        driver.prepare_headers(request.headers)
        upstream.query = apply_auth(target.auth, request.headers, upstream.query)
        upstream.buffer_response = not llm.stream
        balancer = config.balancer
        upstream.connect_timeout_ms = balancer.connect_timeout
        upstream.read_timeout_ms = balancer.read_timeout
        upstream.write_timeout_ms = balancer.write_timeout
        upstream.retries = balancer.retries

        options = target.model.options
        meter = UsageMeter(
            provider=driver.name,
            request_model=llm.model,
            started=self._clock(),
            stream=llm.stream,
            prompt_tokens_estimate=llm.prompt_tokens_estimate,
            input_cost=options.input_cost,
            output_cost=options.output_cost,
        )
        ctx.plugin_state(self._plugin_id)[_STATE_KEY] = _Exchange(target, driver, llm, meter)
        return None

    def header_filter(self, ctx: RequestContext, head: ResponseHead) -> None:
        exchange = self._exchange(ctx)
        if exchange is None or ctx.response_source != "service":
            return
        exchange.proxied = True
        if head.status != 200:
            return  # the provider's own error answer reaches the client untouched
        exchange.transform = True
        model = exchange.request.model
        if model and (self._config.model_name_header or "Kong-Debug" in ctx.request.headers):
            head.headers.set("X-Kong-LLM-Model", f"{exchange.driver.name}/{model}")
        for name in exchange.driver.clear_response_headers:
            head.headers.remove(name)
        if exchange.request.stream:
            head.headers.set("Content-Type", "text/event-stream")
        else:
            # The checked body may be replaced by an error body of another length.
            head.headers.remove("Content-Length")

    def body_filter(self, ctx: RequestContext, chunk: bytes, eof: bool) -> bytes:
        exchange = self._exchange(ctx)
        if exchange is None or not exchange.transform:
            return chunk
        if exchange.request.stream:
            self._count_stream(exchange, chunk, eof)
            return chunk
        exchange.buffered.append(chunk)
        if not eof:
            return b""  # hold partial chunks should the proxy not buffer as asked
        return self._check_buffered(ctx, exchange, b"".join(exchange.buffered))

    async def log(self, ctx: RequestContext) -> None:
        exchange = self._exchange(ctx)
        if exchange is None or not exchange.proxied:
            return
        logging = exchange.target.logging
        if logging.log_statistics:
            ctx.log_fields.update(exchange.meter.log_fields(self._plugin_id, self._clock()))
        if logging.log_payloads:
            ctx.log_fields["ai.proxy.payload.request"] = ctx.request.body.decode("utf-8", "replace")
            if exchange.request.stream:
                ctx.log_fields["ai.proxy.payload.response"] = exchange.meter.text
            elif exchange.response_payload is not None:
                ctx.log_fields["ai.proxy.payload.response"] = exchange.response_payload

    def _exchange(self, ctx: RequestContext) -> _Exchange | None:
        state = ctx.plugin_data.get(self._plugin_id)
        exchange = state.get(_STATE_KEY) if state is not None else None
        return exchange if isinstance(exchange, _Exchange) else None

    def _count_stream(self, exchange: _Exchange, chunk: bytes, eof: bool) -> None:
        events: list[SSEEvent] = exchange.decoder.feed(chunk)
        if eof:
            events += exchange.decoder.close()
        meter = exchange.meter
        for event in events:
            parsed = exchange.driver.stream_event(event.data, exchange.target.route_type)
            meter.add_text(parsed.content)
            if parsed.usage is not None:
                meter.add_usage(parsed.usage)
            if parsed.model is not None:
                meter.response_model = parsed.model
        if eof:
            meter.finish(self._clock())

    def _check_buffered(self, ctx: RequestContext, exchange: _Exchange, body: bytes) -> bytes:
        meter = exchange.meter
        meter.finish(self._clock())
        route_type = exchange.target.route_type
        try:
            parsed = exchange.driver.from_format(body, route_type)
        except TransformError as exc:
            message = (
                f"transformation failed from type {exchange.driver.name}://{route_type}: {exc}"
            )
            out = json.dumps({"error": {"message": message}}).encode()
            # The head is still unsent in buffered mode (see the module doc).
            if ctx.response is not None:
                ctx.response.status = 500
                ctx.response.headers.set("Content-Type", JSON_CONTENT_TYPE)
            exchange.response_payload = out.decode()
            return out
        meter.add_usage(parsed.usage)
        meter.response_model = parsed.model
        exchange.response_payload = parsed.body.decode("utf-8", "replace")
        return parsed.body


class AiProxyAdvancedPlugin(Plugin[Config]):
    name = "ai-proxy-advanced"
    priority = 770
    config_model = Config

    def build(self, config: Config, deps: BuildContext) -> Handler:
        return AiProxyAdvancedHandler(config, deps.entity.id)


PLUGIN = AiProxyAdvancedPlugin()
