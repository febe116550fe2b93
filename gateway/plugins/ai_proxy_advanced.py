"""ai-proxy-advanced: proxy OpenAI-format LLM requests to one of several provider targets.

Kong's behaviour (reference kong-plugins.md §3) per phase:

- access: pick a target (`gateway.llm.balancer`; 500 when the circuit breaker has taken every
  target out), validate and normalize the client's body (400 `{"error":{"message":...}}` on
  failure), point `ctx.upstream` at the provider, and put the provider credentials on the
  request. Non-streaming answers are buffered so they can be checked.
- retry (Kong's target retry callback): after a failed attempt that `failover_criteria` allows
  to retry (`gateway.llm.failover`), pick another target and re-run the request transformation
  for it (model, URL, auth) from the client's original headers and query, so no credential of
  one target ever reaches another and the client's own `Authorization` is stripped again.
- header_filter: on a 200 from the provider, add `X-Kong-LLM-Model`, drop `Set-Cookie`, force
  `text/event-stream` when streaming. Any other status passes through untouched.
- body_filter: check buffered answers (`choices` must be present, else Kong's 500 body) and read
  their usage; pass SSE through unchanged while counting its tokens.
- log: write `ai.proxy.*` log fields when the target's `logging` asks for them; feed latency
  and usage to the balancer.

Balancer state (weighted round-robin position, EWMA latencies, usage, in-flight counts, circuit
breaker) lives per plugin instance per data-plane process and survives snapshot swaps as long
as the instance's config is unchanged.

Model lock: a client may not choose another model than the target's `model.name` whatever the
content type it declares. Kong only reads JSON bodies, so in preserve mode a body sent as
text/plain, a form or multipart was forwarded untouched, model included; Lockgate reads the
`model` of such bodies too and refuses a different one with Kong's 400.

The contract gives header_filter no body, so a buffered answer is checked in body_filter, which
sets the 500 status on `ctx.response`. This relies on the proxy sending the head only after
body_filter when `buffer_response` is set (data_plane/proxy.py does, and recomputes
Content-Length); a proxy that streamed the head first would send the 500 body under a 200.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl

from pydantic import Field, field_validator

from gateway.context import Exit, RequestContext, ResponseHead
from gateway.llm.balancer import BalancerSettings, LoadBalancer
from gateway.llm.failover import FailoverPolicy
from gateway.llm.json_codec import loads
from gateway.llm.providers import driver_for
from gateway.llm.providers.base import Driver, TransformError
from gateway.llm.request import (
    LLMRequest,
    LLMRequestError,
    normalize_request,
    options_to_merge,
    parse_body,
)
from gateway.llm.schema import REFERENCEABLE_AUTH, Balancer, GenaiCategory, LlmFormat, Target
from gateway.llm.stream import StreamTranslator
from gateway.llm.upstream import UpstreamPlan
from gateway.llm.usage import UsageMeter
from gateway.plugins.base import BuildContext, Handler, Plugin, PluginConfig, UpstreamFailure
from gateway.responses import JSON_CONTENT_TYPE, error, exit_json

_STATE_KEY = "ai-proxy-advanced"
_MULTIPART_MODEL = re.compile(
    rb'content-disposition:[^\r\n]*\bname="?model"?[^\r\n]*\r?\n(?:[^\r\n]+\r?\n)*\r?\n([^\r\n]*)',
    re.IGNORECASE,
)


class Config(PluginConfig):
    """ai-proxy-advanced config (Kong 3.12 field names and defaults)."""

    targets: list[Target] = Field(min_length=1)
    balancer: Balancer = Field(default_factory=Balancer)
    response_streaming: Literal["allow", "deny", "always"] = "allow"
    # Kong 3.13+ default (1 MiB; 0 = unlimited): 8 KiB refused ordinary chat histories.
    max_request_body_size: int = Field(default=1048576, ge=0)
    """Largest client body (bytes) that is read as an LLM request; 0 = unlimited."""
    model_name_header: bool = True
    llm_format: LlmFormat = "openai"
    genai_category: GenaiCategory = "text/generation"
    embeddings: dict[str, Any] | None = None
    vectordb: dict[str, Any] | None = None

    @field_validator("embeddings", "vectordb")
    @classmethod
    def _semantic_only(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        # Only the semantic algorithm uses these, and it is not implemented.
        if value is not None:
            raise ValueError("only used by the 'semantic' balancer, not supported by Lockgate yet")
        return value


@dataclass(slots=True)
class _Exchange:
    """One request's state between phases (kept in kong.ctx.plugin).

    `target`, `driver`, `request` and `meter` describe the current attempt; on a retry they
    are replaced with the next target's.
    """

    index: int
    target: Target
    driver: Driver
    request: LLMRequest
    meter: UsageMeter
    body: dict[str, Any] | None
    """The client's parsed body, kept to re-run the transformation for another target."""
    tried: list[int]
    pristine: tuple[list[tuple[str, str]], str, str] | None
    """The client's headers, query and method before any target touched them (only kept
    when a retry is possible)."""
    holding: bool = True
    """The attempt at `index` still counts as in flight in the balancer."""
    judged: bool = False
    """The attempt's outcome was already given to the circuit breaker."""
    proxied: bool = False
    """header_filter saw the provider's answer."""
    transform: bool = False
    """The answer is a 200 this plugin reads (buffered check or SSE counting)."""
    stream: StreamTranslator | None = None
    """Created at the first streamed chunk, for the attempt that answered."""
    buffered: list[bytes] = field(default_factory=list)
    response_payload: bytes | None = None
    """The buffered answer sent to the client (decoded only if payloads are logged)."""


class AiProxyAdvancedHandler(Handler):
    def __init__(
        self,
        config: Config,
        plugin_id: str,
        clock: Callable[[], float] = time.monotonic,
        balancer: LoadBalancer | None = None,
    ) -> None:
        self._config = config
        self._plugin_id = plugin_id
        self._clock = clock
        self._targets = tuple(config.targets)
        self._drivers = tuple(driver_for(t.model.provider, t.model.options) for t in config.targets)
        # Worked out once per snapshot rather than per request.
        self._merged = tuple(options_to_merge(t) for t in config.targets)
        self._plans = tuple(
            UpstreamPlan(t, d) for t, d in zip(self._targets, self._drivers, strict=True)
        )
        self._balancer = balancer or new_balancer(config, clock)
        settings = self._balancer.settings
        self._hash_header = (
            settings.hash_on_header if settings.algorithm == "consistent-hashing" else None
        )
        self._policy = FailoverPolicy.of(config.balancer.retries, config.balancer.failover_criteria)
        self._can_retry = config.balancer.retries > 0 and len(self._targets) > 1
        self._needs_stats = settings.algorithm in ("lowest-latency", "lowest-usage")
        # Per target, the lower-cased response headers header_filter drops on a 200: for a
        # stream, the driver's; for a checked (buffered) answer, Content-Length too.
        cleared = tuple(
            frozenset(name.lower() for name in d.clear_response_headers) for d in self._drivers
        )
        self._cleared_stream = cleared
        self._cleared_buffered = tuple(names | {"content-length"} for names in cleared)

    @property
    def balancer(self) -> LoadBalancer:
        """This instance's selection state (shared with later snapshots of the same config)."""
        return self._balancer

    async def access(self, ctx: RequestContext) -> Exit | None:
        config = self._config
        request = ctx.request
        body = parse_body(
            request.body, request.headers.get("Content-Type"), config.max_request_body_size
        )
        key = request.headers.get(self._hash_header) if self._hash_header else None
        index = self._balancer.pick(key)
        if index is None:
            # Kong: every target is taken out by the circuit breaker.
            return error(ctx, 500)
        target = self._targets[index]
        pristine = None
        if self._can_retry:
            pristine = (request.headers.items(), ctx.upstream.query, ctx.upstream.method)
        exchange = _Exchange(
            index, target, self._drivers[index], _NO_REQUEST, _NO_METER, body, [index], pristine
        )
        try:
            self._apply(ctx, exchange, index)
        except LLMRequestError as exc:
            self._balancer.release(index)
            return exit_json(exc.status, {"error": {"message": exc.message}})
        ctx.plugin_state(self._plugin_id)[_STATE_KEY] = exchange
        return None

    async def retry(self, ctx: RequestContext, failure: UpstreamFailure) -> bool:
        exchange = self._exchange(ctx)
        if exchange is None:
            return False
        balancer, policy = self._balancer, self._policy
        self._end_attempt(exchange)
        if policy.is_unhealthy(failure):
            balancer.record_failure(exchange.index)
        exchange.judged = True
        if exchange.pristine is None or not policy.should_retry(
            failure, ctx.upstream.method, len(exchange.tried)
        ):
            return False
        key = ctx.request.headers.get(self._hash_header) if self._hash_header else None
        while True:
            index = balancer.pick(key, exclude=exchange.tried)
            if index is None:
                return False  # nothing left to try: the last failure stands
            exchange.tried.append(index)
            _restore(ctx, exchange.pristine)
            try:
                self._apply(ctx, exchange, index)
            except LLMRequestError:
                balancer.release(index)  # this target cannot take the request; try the next
                continue
            return True

    def header_filter(self, ctx: RequestContext, head: ResponseHead) -> None:
        exchange = self._exchange(ctx)
        if exchange is None or ctx.response_source != "service":
            return
        exchange.proxied = True
        if not exchange.judged:
            exchange.judged = True
            if self._policy.status_is_unhealthy(head.status):
                self._balancer.record_failure(exchange.index)
            elif head.status < 400:
                self._balancer.record_success(exchange.index)
        if head.status != 200:
            return  # the provider's own error answer reaches the client untouched
        exchange.transform = True
        model = exchange.request.model
        if model and (self._config.model_name_header or "Kong-Debug" in ctx.request.headers):
            head.headers.set("X-Kong-LLM-Model", f"{exchange.driver.name}/{model}")
        if exchange.request.stream:
            head.headers.remove_lowered(self._cleared_stream[exchange.index])
            head.headers.set("Content-Type", "text/event-stream")
        else:
            # The checked body may be replaced by an error body of another length.
            head.headers.remove_lowered(self._cleared_buffered[exchange.index])

    def body_filter(self, ctx: RequestContext, chunk: bytes, eof: bool) -> bytes:
        exchange = self._exchange(ctx)
        if exchange is None or not exchange.transform:
            return chunk
        if exchange.request.stream:
            return self._stream(exchange, chunk, eof)
        if eof and not exchange.buffered:
            return self._check_buffered(ctx, exchange, chunk)  # the usual: one whole body
        exchange.buffered.append(chunk)
        if not eof:
            return b""  # hold partial chunks should the proxy not buffer as asked
        return self._check_buffered(ctx, exchange, b"".join(exchange.buffered))

    async def log(self, ctx: RequestContext) -> None:
        exchange = self._exchange(ctx)
        if exchange is None:
            return
        self._end_attempt(exchange)
        if not exchange.proxied:
            return
        # Always on, whatever log_statistics says: the analytics pipeline's usage record.
        ctx.log_fields["lockgate.llm"] = exchange.meter.record(self._clock())
        logging = exchange.target.logging
        fields: dict[str, Any] | None = None
        if logging.log_statistics or (self._needs_stats and exchange.transform):
            fields = exchange.meter.log_fields(self._plugin_id, self._clock())
        response = ctx.response
        if fields is not None and exchange.transform and response and response.status == 200:
            self._learn(exchange.index, fields)
        if logging.log_statistics and fields is not None:
            if len(exchange.tried) > 1:
                fields["ai.proxy.meta"]["tried_targets"] = [
                    _describe(self._targets[i]) for i in exchange.tried
                ]
            ctx.log_fields.update(fields)
        if logging.log_payloads:
            ctx.log_fields["ai.proxy.payload.request"] = ctx.request.body.decode("utf-8", "replace")
            if exchange.request.stream:
                ctx.log_fields["ai.proxy.payload.response"] = exchange.meter.text
            elif exchange.response_payload is not None:
                payload = exchange.response_payload.decode("utf-8", "replace")
                ctx.log_fields["ai.proxy.payload.response"] = payload

    def _apply(self, ctx: RequestContext, exchange: _Exchange, index: int) -> None:
        """Point the request at target `index` (Kong's REQ_TRANSFORMATION for one target):
        normalized body, URL, auth, timeouts and a fresh usage meter. Raises LLMRequestError
        when the client's request does not fit this target."""
        config = self._config
        target, driver = self._targets[index], self._drivers[index]
        if exchange.body is None and target.route_type == "preserve":
            # Kong forwards such a body untouched, whatever `model` it names.
            request = ctx.request
            locked = _model_lock_violation(
                request.body, request.headers.get("Content-Type"), target
            )
            if locked is not None:
                raise LLMRequestError(400, locked)
        llm = normalize_request(
            exchange.body, target, driver, config.response_streaming, self._merged[index]
        )
        self._plans[index].apply(ctx, llm)
        upstream = ctx.upstream
        balancer = config.balancer
        upstream.connect_timeout_ms = balancer.connect_timeout
        upstream.read_timeout_ms = balancer.read_timeout
        upstream.write_timeout_ms = balancer.write_timeout
        upstream.retries = balancer.retries

        options = target.model.options
        exchange.meter = UsageMeter(
            provider=driver.name,
            request_model=llm.model,
            started=self._clock(),
            stream=llm.stream,
            prompt_tokens_estimate=llm.prompt_tokens_estimate,
            input_cost=options.input_cost,
            output_cost=options.output_cost,
        )
        exchange.index, exchange.target, exchange.driver, exchange.request = (
            index,
            target,
            driver,
            llm,
        )
        exchange.holding, exchange.judged = True, False

    def _end_attempt(self, exchange: _Exchange) -> None:
        if exchange.holding:
            exchange.holding = False
            self._balancer.release(exchange.index)

    def _learn(self, index: int, fields: dict[str, Any]) -> None:
        """Feed a successful answer's latency or usage to the balancer."""
        settings = self._balancer.settings
        usage = fields["ai.proxy.usage"]
        if settings.algorithm == "lowest-latency":
            if settings.latency_strategy == "e2e":
                self._balancer.record_latency(index, fields["ai.proxy.meta"]["llm_latency"])
            elif usage["completion_tokens"]:
                self._balancer.record_latency(index, usage["time_per_token"])
        elif settings.algorithm == "lowest-usage":
            strategy = settings.tokens_count_strategy
            amount = (
                usage["cost"]
                if strategy == "cost"
                else usage[_USAGE_FIELDS.get(strategy, "total_tokens")]
            )
            self._balancer.record_usage(index, float(amount))

    def _exchange(self, ctx: RequestContext) -> _Exchange | None:
        state = ctx.plugin_data.get(self._plugin_id)
        exchange = state.get(_STATE_KEY) if state is not None else None
        return exchange if isinstance(exchange, _Exchange) else None

    def _stream(self, exchange: _Exchange, chunk: bytes, eof: bool) -> bytes:
        # Passes OpenAI-format streams through, re-frames the others (gateway.llm.stream).
        if exchange.stream is None:
            exchange.stream = StreamTranslator(
                exchange.driver,
                exchange.target.route_type,
                exchange.meter,
                exchange.request.model or "",
                include_usage=exchange.request.include_usage,
            )
        out = exchange.stream.feed(chunk, eof)
        if eof:
            exchange.meter.finish(self._clock())
        return out

    def _check_buffered(self, ctx: RequestContext, exchange: _Exchange, body: bytes) -> bytes:
        meter = exchange.meter
        meter.finish(self._clock())
        route_type = exchange.target.route_type
        try:
            parsed = exchange.driver.from_format(body, route_type, exchange.request.model or "")
        except TransformError as exc:
            message = (
                f"transformation failed from type {exchange.driver.name}://{route_type}: {exc}"
            )
            out = json.dumps({"error": {"message": message}}).encode()
            # The head is still unsent in buffered mode (see the module doc).
            if ctx.response is not None:
                ctx.response.status = 500
                ctx.response.headers.set("Content-Type", JSON_CONTENT_TYPE)
            exchange.response_payload = out
            return out
        meter.add_usage(parsed.usage)
        meter.response_model = parsed.model
        exchange.response_payload = parsed.body
        return parsed.body


_USAGE_FIELDS = {
    "total-tokens": "total_tokens",
    "prompt-tokens": "prompt_tokens",
    "completion-tokens": "completion_tokens",
}
_NO_REQUEST = LLMRequest(None, None, False, 0)
_NO_METER = UsageMeter(provider="", request_model=None, started=0.0, stream=False)


def balancer_settings(config: Config) -> BalancerSettings:
    """The selection settings of `config.balancer`."""
    balancer = config.balancer
    return BalancerSettings(
        algorithm=balancer.algorithm,
        latency_strategy=balancer.latency_strategy,
        tokens_count_strategy=balancer.tokens_count_strategy,
        hash_on_header=balancer.hash_on_header,
        slots=balancer.slots,
        max_fails=balancer.max_fails,
        fail_timeout_ms=balancer.fail_timeout,
    )


def new_balancer(config: Config, clock: Callable[[], float] = time.monotonic) -> LoadBalancer:
    """Fresh selection state for `config`'s targets."""
    targets = config.targets
    seen: dict[str, int] = {}
    keys = []
    for target in targets:
        name = _describe(target)
        seen[name] = seen.get(name, 0) + 1
        keys.append(f"{name}#{seen[name]}")
    return LoadBalancer([t.weight for t in targets], keys, balancer_settings(config), clock=clock)


def _describe(target: Target) -> str:
    model = target.model
    return f"{model.provider}/{model.name or ''}@{model.options.upstream_url or ''}"


def _restore(ctx: RequestContext, pristine: tuple[list[tuple[str, str]], str, str]) -> None:
    """Undo the previous target's changes to the upstream request (its credentials included)."""
    items, query, method = pristine
    headers = ctx.request.headers
    headers.remove_many(headers.names())
    headers.extend(items)
    ctx.upstream.query, ctx.upstream.method = query, method


def _model_lock_violation(raw: bytes, content_type: str | None, target: Target) -> str | None:
    """Kong's `cannot use own model` message when a body Kong would not read as JSON (another
    content type, or over `max_request_body_size`) names a model other than the target's."""
    configured = target.model.name
    if configured is None or not raw:
        return None
    ctype = (content_type or "").lower()
    requested: object = None
    if "multipart/" in ctype:
        found = _MULTIPART_MODEL.search(raw)
        requested = found.group(1).decode("utf-8", "replace") if found else None
    elif "x-www-form-urlencoded" in ctype:
        values = [v for k, v in parse_qsl(raw.decode("latin-1")) if k == "model"]
        requested = values[-1] if values else None
    else:
        try:
            doc = loads(raw)
        except ValueError:
            doc = None
        requested = doc.get("model") if isinstance(doc, dict) else None
    if isinstance(requested, str) and requested and requested != configured:
        return f"cannot use own model - must be: {configured}"
    return None


class AiProxyAdvancedPlugin(Plugin[Config]):
    name = "ai-proxy-advanced"
    priority = 770
    referenceable = tuple(
        f"{record}.auth.{field}"
        for record in ("targets[]", "embeddings")
        for field in REFERENCEABLE_AUTH
    )
    config_model = Config

    def __init__(self) -> None:
        self._balancers: dict[str, tuple[Config, LoadBalancer]] = {}

    def build(self, config: Config, deps: BuildContext) -> Handler:
        # Keep an instance's balancer state across snapshots while its config is unchanged.
        plugin_id = deps.entity.id
        kept = self._balancers.get(plugin_id)
        if kept is not None and kept[0] == config:
            balancer = kept[1]
        else:
            balancer = new_balancer(config)
            self._balancers[plugin_id] = (config, balancer)
        return AiProxyAdvancedHandler(config, plugin_id, balancer=balancer)


PLUGIN = AiProxyAdvancedPlugin()
