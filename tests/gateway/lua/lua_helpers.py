"""Request contexts and a one-call Lua runner for the sandbox/PDK tests."""

from __future__ import annotations

from gateway.context import Exit, Request, RequestContext, ResponseHead, Upstream
from gateway.headers import Headers
from gateway.lua.sandbox import SandboxLimits
from gateway.lua.serverless import CompiledFunctions

REQUEST_ID = "5f1c2a4e0b9d7e3a"


def make_ctx(
    *,
    method: str = "GET",
    path: str = "/v1/chat/completions",
    query: str = "",
    headers: list[tuple[str, str]] | None = None,
    body: bytes = b"",
) -> RequestContext:
    """A request to http://api.example.com:8000 from 203.0.113.7, routed to the same path."""
    request = Request(
        method=method,
        scheme="http",
        host="api.example.com",
        port=8000,
        raw_path=path,
        path=path,
        raw_query=query,
        headers=Headers(headers or []),
        body=body,
        client_ip="203.0.113.7",
        start_time=1_700_000_000.25,
    )
    upstream = Upstream(host="upstream.internal", path=path, query=query, method=method)
    return RequestContext(request=request, upstream=upstream, request_id=REQUEST_ID)


def compile_phase(
    *chunks: str, phase: str = "access", limits: SandboxLimits | None = None
) -> CompiledFunctions:
    return CompiledFunctions("pre-function", "plugin-1", {phase: list(chunks)}, limits)


def run_lua(
    code: str,
    ctx: RequestContext | None = None,
    phase: str = "access",
    head: ResponseHead | None = None,
) -> tuple[Exit | None, RequestContext]:
    """Compile `code` alone in `phase` and run it once against `ctx` (a default one if None)."""
    context = ctx if ctx is not None else make_ctx()
    result = compile_phase(code, phase=phase).run(phase, context, head)
    return result, context
