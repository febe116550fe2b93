"""The proxy: one request through routing, the plugin pipeline and the upstream, as a bare
ASGI callable (no web framework on this path).

Order per request (Kong's): global rewrite -> router -> access (per slot, consumer-aware) ->
upstream (-> retry hooks after a failed attempt, possibly another attempt) -> header_filter ->
body_filter -> log. An `Exit` from rewrite/access skips the remaining access handlers; response
phases still run for every plugin collected so far.

Retries: after a connection error, a timeout, an invalid response or a response head with
status >= 400, plugins overriding `Handler.retry` may re-target `ctx.upstream` and ask for
another attempt. The decision comes before header_filter and before the failed response's body
is read, so nothing of a failed attempt reaches the client; once a head is passed on (and a
stream started), there is no going back.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, MutableMapping, Sequence
from random import getrandbits as _random_bits
from typing import Any

from data_plane.http_client import ClientError, ReadTimeout
from data_plane.pipeline import Instance, PhaseLists, Pipeline
from data_plane.router import normalize_path
from data_plane.runtime import Runtime, RuntimeHolder
from data_plane.upstream import HOP_BY_HOP, Timeouts, UpstreamClient, UpstreamError
from gateway import responses
from gateway.context import Exit, Request, RequestContext, ResponseHead, Upstream
from gateway.headers import Headers
from gateway.plugins.base import PluginRuntimeError, UpstreamFailure
from lockgate import __version__

log = logging.getLogger("lockgate.proxy")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SERVER = f"lockgate/{__version__}"
VIA = f"1.1 {SERVER}"
_FORWARDED = frozenset(
    {"x-forwarded-for", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-real-ip"}
)
_RESPONSE_HOP = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade"}
)
_RESPONSE_OWN = _RESPONSE_HOP | {
    "x-kong-upstream-latency",
    "x-kong-proxy-latency",
    "via",
    "x-kong-request-id",
}
_UPSTREAM_SKIP = HOP_BY_HOP | _FORWARDED | {"x-kong-request-id"}
_NO_PHASES = PhaseLists.of(())
_PROXY_NAMES = ("x-kong-upstream-latency", "x-kong-proxy-latency", "via", "x-kong-request-id")
"""The lower-cased names of the headers `_forward` adds to every upstream response, in order."""


class BodyTooLarge(Exception):
    pass


class ClientGone(Exception):
    """The client disconnected before its request body was complete."""


class ProxyApp:
    """ASGI application serving the proxy port."""

    def __init__(
        self,
        holder: RuntimeHolder,
        upstream: UpstreamClient,
        *,
        max_body: int = 16 << 20,
        observer: Callable[[RequestContext], None] | None = None,
    ) -> None:
        """`observer` sees every routed request's context after its log phase (status in
        `ctx.response`, timings in `ctx.latencies`): the hook for metrics and analytics. It must
        be cheap and must not raise."""
        self._holder = holder
        self._upstream = upstream
        self._max_body = max_body
        self._observer = observer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind != "http":
            if kind == "lifespan":
                await self._lifespan(receive, send)
            return
        started = time.perf_counter()
        ctx = _context(scope)
        runtime = self._holder.current
        try:
            message = await receive()
            body = message.get("body", b"")
            if (
                message["type"] == "http.request"
                and not message.get("more_body", False)
                and len(body) <= self._max_body
            ):
                ctx.request.body = body  # the usual case: the whole body in one message
            else:
                ctx.request.body = await _read_body(message, receive, self._max_body)
        except ClientGone:
            return  # nobody to answer; a truncated body must not go upstream
        except BodyTooLarge:
            await _send_exit(
                send, responses.error(ctx, 413, "Request size limit exceeded"), started
            )
            return
        if runtime is None:
            await _send_exit(
                send,
                responses.error(ctx, 503, "This data plane has no configuration yet"),
                started,
            )
            return
        await self._handle(runtime, ctx, send, started)

    async def _handle(
        self, runtime: Runtime, ctx: RequestContext, send: Send, started: float
    ) -> None:
        collected: list[Instance] = []
        exit_: Exit | None = None
        fixed: PhaseLists | None = None
        try:
            if runtime.plugins.global_rewrite:
                exit_ = await _run_rewrite(runtime, ctx, collected)
            pipeline = runtime.plugins.no_route
            if exit_ is None:
                match = runtime.router.match(
                    ctx.request.method,
                    ctx.request.headers.get("host") or ctx.request.host,
                    ctx.request.path,
                    ctx.request.headers,
                    port=ctx.request.port,
                )
                if match is None:
                    exit_ = responses.error(ctx, 404, "no Route matched with those values")
                else:
                    ctx.route, ctx.service = match.route, match.service
                    _target(ctx, match.upstream_path)
                    if "x-forwarded-prefix" in ctx.request.headers:  # never trust the client's
                        ctx.request.headers.remove("X-Forwarded-Prefix")
                    if match.forwarded_prefix:
                        ctx.request.headers.set("X-Forwarded-Prefix", match.forwarded_prefix)
                    pipeline = runtime.plugins.by_route[match.route.id]
            if exit_ is None and pipeline.slots:
                exit_ = await _run_access(pipeline, ctx, collected)
                fixed = pipeline.fixed_phases  # every instance of `fixed` was collected
        except PluginRuntimeError as exc:
            log.error("plugin error (request %s): %s", ctx.request_id, exc)
            exit_ = responses.error(ctx, 500)
        except Exception:
            log.exception("plugin error (request %s)", ctx.request_id)
            exit_ = responses.error(ctx, 500)
        if fixed is not None:
            phases = fixed
        elif collected:
            phases = PhaseLists.of(collected)
        else:
            phases = _NO_PHASES
        try:
            if exit_ is not None:
                ctx.response_source = "exit"
                await self._respond_exit(ctx, exit_, phases, send, started)
            else:
                await self._forward(ctx, phases, send, started)
        finally:
            # Also when the client went away mid-response: plugins release per-request state
            # (e.g. a balancer's in-flight count) in log.
            ctx.latencies.total_ms = (time.perf_counter() - started) * 1000
            if phases.log:
                for inst in phases.log:
                    try:
                        await inst.handler.log(ctx)
                    except Exception:
                        log.exception("log phase of %s failed", inst.name)
            if self._observer is not None:
                self._observer(ctx)

    async def _respond_exit(
        self,
        ctx: RequestContext,
        exit_: Exit,
        phases: PhaseLists,
        send: Send,
        started: float,
    ) -> None:
        head = ResponseHead(exit_.status, Headers(exit_.headers))
        _apply_plugin_headers(head.headers, ctx.response_headers)
        body = _filter_whole(ctx, head, exit_.body, phases)
        latency = int((time.perf_counter() - started) * 1000)
        head.headers.set_many(
            (
                ("Content-Length", str(len(body))),
                ("X-Kong-Response-Latency", str(latency)),
                ("Server", SERVER),
                ("X-Kong-Request-Id", ctx.request_id),
            )
        )
        await send(_start(head))
        await send({"type": "http.response.body", "body": body, "more_body": False})

    async def _forward(
        self, ctx: RequestContext, phases: PhaseLists, send: Send, started: float
    ) -> None:
        up = ctx.upstream
        # A plugin with a retry hook owns retries: one connection attempt per try.
        hooked = phases.retry
        proxy_done = time.perf_counter()
        while True:
            target = f"{up.path}?{up.query}" if up.query else up.path
            try:
                response = await self._upstream.send(
                    up.method,
                    up.scheme,
                    up.host,
                    up.port,
                    target,
                    _upstream_headers(ctx),
                    up.body if up.body is not None else ctx.request.body,
                    _timeouts(up.connect_timeout_ms, up.read_timeout_ms, up.write_timeout_ms),
                    0 if hooked else up.retries,
                )
            except UpstreamError as exc:
                log.warning(
                    "upstream %s://%s:%s%s failed: %s (request %s)",
                    up.scheme,
                    up.host,
                    up.port,
                    target,
                    exc,
                    ctx.request_id,
                )
                if hooked and await _retry(
                    ctx, phases.retry_hooks, UpstreamFailure(exc.kind, 0, exc.sent)
                ):
                    continue
                ctx.response_source = "error"
                await self._respond_exit(ctx, _upstream_exit(ctx, exc), phases, send, started)
                return
            if (
                hooked
                and response.status >= 400
                and await _retry(
                    ctx, phases.retry_hooks, UpstreamFailure("status", response.status)
                )
            ):
                # Never read: the failed answer must not reach the client.
                response.close()
                continue
            break
        try:
            upstream_ms = (time.perf_counter() - proxy_done) * 1000
            proxy_ms = (proxy_done - started) * 1000
            latencies = ctx.latencies
            latencies.upstream_ms = upstream_ms
            latencies.proxy_ms = proxy_ms
            # One pass over the upstream's headers: framing is ours, and so are the names the
            # proxy sets below (as `set` would, without rebuilding the list once per name). The
            # lower-cased names worked out on the way are the index later lookups use.
            items: list[tuple[str, str]] = []
            keys: list[str] = []
            for item in response.headers:
                key = item[0].lower()
                if key not in _RESPONSE_OWN:
                    items.append(item)
                    keys.append(key)
            items += (
                ("X-Kong-Upstream-Latency", str(int(upstream_ms))),
                ("X-Kong-Proxy-Latency", str(int(proxy_ms))),
                ("Via", VIA),
                ("X-Kong-Request-Id", ctx.request_id),
            )
            keys += _PROXY_NAMES
            head = ResponseHead(response.status, Headers.indexed(items, keys))
            if len(ctx.response_headers):
                _apply_plugin_headers(head.headers, ctx.response_headers)
            if up.buffer_response:
                try:
                    data = await response.read()
                except ClientError as exc:
                    # Nothing was sent to the client yet: Kong's 502/504 are still possible.
                    log.warning("upstream body failed: %s (request %s)", exc, ctx.request_id)
                    ctx.response_source = "error"
                    failure = UpstreamError(
                        str(exc),
                        kind="timeout" if isinstance(exc, ReadTimeout) else "error",
                        sent=True,
                    )
                    await self._respond_exit(
                        ctx, _upstream_exit(ctx, failure), phases, send, started
                    )
                    return
                data = _filter_whole(ctx, head, data, phases)
                head.headers.set("Content-Length", str(len(data)))
                await send(_start(head))
                await send({"type": "http.response.body", "body": data, "more_body": False})
                return
            ctx.response = head
            filters = phases.body_filter
            # While the upstream's Content-Length goes to the client unchanged, a body already
            # here goes in one message (the same bytes on the wire as streaming it).
            whole = not len(ctx.response_headers)
            if phases.header_filter:
                for inst in phases.header_filter:
                    inst.handler.header_filter(ctx, head)
                whole = False
            if filters:
                head.headers.remove("Content-Length")
                whole = False
            if whole:
                body = response.complete_body()
                if body is not None:
                    await send(_start(head))
                    await send({"type": "http.response.body", "body": body, "more_body": False})
                    return
            await send(_start(head))
            async for chunk in response.chunks():
                for inst in filters:
                    chunk = inst.handler.body_filter(ctx, chunk, False)
                if chunk:
                    await send({"type": "http.response.body", "body": chunk, "more_body": True})
            tail = b""
            for inst in filters:
                tail = inst.handler.body_filter(ctx, tail, True)
            await send({"type": "http.response.body", "body": tail, "more_body": False})
        finally:
            response.release()

    async def startup(self) -> None:
        """Open the upstream pool (what the ASGI lifespan startup does)."""
        await self._upstream.start()

    async def shutdown(self) -> None:
        """Close the upstream pool (what the ASGI lifespan shutdown does)."""
        await self._upstream.close()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


_TIMEOUTS: dict[tuple[int, int, int], Timeouts] = {}


def _timeouts(connect_ms: int, read_ms: int, write_ms: int) -> Timeouts:
    """The (frozen, so shareable) `Timeouts` of these milliseconds, made once per triple."""
    key = (connect_ms, read_ms, write_ms)
    found = _TIMEOUTS.get(key)
    if found is None:
        if len(_TIMEOUTS) >= 256:  # plugins may set any values: stay bounded
            _TIMEOUTS.clear()
        found = _TIMEOUTS[key] = Timeouts(connect_ms / 1000, read_ms / 1000, write_ms / 1000)
    return found


def _upstream_exit(ctx: RequestContext, exc: UpstreamError) -> Exit:
    if exc.timeout:
        return responses.error(ctx, 504, "The upstream server is timing out")
    return responses.error(ctx, 502, "An invalid response was received from the upstream server")


def _context(scope: Scope) -> RequestContext:
    # ASGI servers lower-case request header names.
    headers = Headers.from_lowered(
        [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope["headers"]]
    )
    host_header = headers.get("host") or ""
    host, _, port = host_header.partition(":")
    client = scope.get("client") or ("", 0)
    raw_path = scope.get("raw_path", b"").decode("latin-1") or scope["path"]
    raw_query = scope.get("query_string", b"").decode("latin-1")
    method = scope["method"]
    if port.isdigit():
        port_number = int(port)
    else:
        server = scope.get("server") or ("", 0)
        port_number = int(server[1] or 0)
    # Positional arguments: the fields' order in gateway.context (a keyword call costs more).
    request = Request(
        method,
        scope.get("scheme", "http"),
        host.lower(),
        port_number,
        raw_path,
        normalize_path(raw_path),
        raw_query,
        headers,
        b"",
        client[0],
        scope.get("http_version", "1.1"),
    )
    upstream = Upstream()
    upstream.method = method
    upstream.query = raw_query
    return RequestContext(request, upstream, f"{_random_bits(128):032x}")


async def _read_body(message: Message, receive: Receive, limit: int) -> bytes:
    """The request body, `message` being the first message `receive` gave."""
    if message["type"] == "http.disconnect":
        raise ClientGone
    body: bytes = message.get("body", b"")
    if len(body) > limit:
        raise BodyTooLarge
    if not message.get("more_body", False):
        return body  # the usual case: the whole body in one message
    parts = [body]
    size = len(body)
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        parts.append(chunk)
        if not message.get("more_body", False):
            return b"".join(parts)


async def _run_rewrite(
    runtime: Runtime, ctx: RequestContext, collected: list[Instance]
) -> Exit | None:
    for inst in runtime.plugins.global_rewrite:
        exit_ = await inst.handler.rewrite(ctx)
        if exit_ is not None:
            collected.append(inst)
            return exit_
    return None


async def _run_access(
    pipeline: Pipeline, ctx: RequestContext, collected: list[Instance]
) -> Exit | None:
    """Run the access handlers of `pipeline`, collecting its instances into the empty
    `collected`. As Kong: after an exit the remaining access handlers are skipped, but their
    plugins are still collected, so their response phases run on the exit response. A handler
    that raises leaves only the instances up to its own collected."""
    exit_: Exit | None = None
    fixed = pipeline.fixed
    if fixed is not None and pipeline.fixed_phases is not None:
        collected.extend(fixed)
        for instance in pipeline.fixed_phases.access:
            try:
                exit_ = await instance.handler.access(ctx)
            except BaseException:
                del collected[fixed.index(instance) + 1 :]
                raise
            if exit_ is not None:
                return exit_
        return None
    for slot in pipeline.slots:
        inst = slot.pick(ctx.consumer.id if ctx.consumer else None)
        if inst is None:
            continue
        # As Kong: after an exit the remaining access handlers are skipped, but their plugins are
        # still collected, so their response phases run on the exit response.
        collected.append(inst)
        if exit_ is None and "access" in inst.phases:
            exit_ = await inst.handler.access(ctx)
    return exit_


async def _retry(ctx: RequestContext, hooks: Sequence[Instance], failure: UpstreamFailure) -> bool:
    """Ask the retry hooks, in plugin order, whether to try again; the first yes wins."""
    for inst in hooks:
        try:
            if await inst.handler.retry(ctx, failure):
                return True
        except Exception:
            log.exception("retry hook of %s failed (request %s)", inst.name, ctx.request_id)
    return False


def _target(ctx: RequestContext, upstream_path: str) -> None:
    service = ctx.service
    up = ctx.upstream
    up.path = upstream_path
    if service is None:
        return
    up.scheme = "https" if service.protocol in ("https", "grpcs", "tls") else "http"
    up.host = service.host
    up.port = service.port
    up.connect_timeout_ms = service.connect_timeout
    up.read_timeout_ms = service.read_timeout
    up.write_timeout_ms = service.write_timeout
    up.retries = service.retries
    route = ctx.route
    if route is not None and route.preserve_host:
        up.host_header = ctx.request.headers.get("host")


def _authority(host: str, port: int, scheme: str) -> str:
    if (scheme == "http" and port == 80) or (scheme == "https" and port == 443):
        return host
    return f"{host}:{port}"


def _upstream_headers(ctx: RequestContext) -> list[tuple[str, str]]:
    req = ctx.request
    up = ctx.upstream
    forwarded_for = req.headers.get("x-forwarded-for")
    out = req.headers.items_except(_UPSTREAM_SKIP)
    out += (
        ("Host", up.host_header or _authority(up.host, up.port, up.scheme)),
        (
            "X-Forwarded-For",
            f"{forwarded_for}, {req.client_ip}" if forwarded_for else req.client_ip,
        ),
        ("X-Forwarded-Proto", req.scheme),
        ("X-Forwarded-Host", req.host),
        ("X-Forwarded-Port", str(req.port)),
        ("X-Real-IP", req.client_ip),
        ("X-Kong-Request-Id", ctx.request_id),
    )
    return out


def _filter_whole(
    ctx: RequestContext, head: ResponseHead, body: bytes, phases: PhaseLists
) -> bytes:
    ctx.response = head
    for inst in phases.header_filter:
        inst.handler.header_filter(ctx, head)
    for inst in phases.body_filter:
        body = inst.handler.body_filter(ctx, body, True)
    return body


def _apply_plugin_headers(headers: Headers, extra: Headers) -> None:
    """Headers plugins set before the response existed replace the response's own (all values
    of a name kept, so kong.response.add_header can repeat one)."""
    headers.remove_lowered(frozenset(extra.names()))
    headers.extend(extra.items())


def _start(head: ResponseHead) -> Message:
    """The ASGI message starting the response `head` (built here, sent by the caller: one
    coroutine fewer per request)."""
    return {
        "type": "http.response.start",
        "status": head.status,
        "headers": head.headers.encoded(),
    }


async def _send_exit(send: Send, exit_: Exit, started: float) -> None:
    headers = Headers(exit_.headers)
    headers.set_many(
        (
            ("Content-Length", str(len(exit_.body))),
            ("X-Kong-Response-Latency", str(int((time.perf_counter() - started) * 1000))),
            ("Server", SERVER),
        )
    )
    await send(_start(ResponseHead(exit_.status, headers)))
    await send({"type": "http.response.body", "body": exit_.body, "more_body": False})
