"""Where an LLM request goes and how it authenticates (Kong's driver `configure_request`)."""

from __future__ import annotations

import json
import re
from urllib.parse import unquote_plus, urlencode, urlsplit

from gateway.context import RequestContext
from gateway.headers import Headers
from gateway.llm.providers.base import Driver, UpstreamURL
from gateway.llm.request import LLMRequest
from gateway.llm.schema import Auth, Target

_LEADING_SLASHES = re.compile(r"^/*")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def prepare_upstream(ctx: RequestContext, target: Target, driver: Driver, llm: LLMRequest) -> None:
    """Point `ctx.upstream` at `target` and make the request it sends (Kong's driver
    `configure_request` plus `set_body`): endpoint, Host, the provider-format body, the
    driver's headers, the credentials, then the provider's own query/headers (`api-version`,
    `anthropic-version`). Non-streaming answers are buffered so they can be transformed.

    It changes `ctx.request.headers` and starts from `ctx.upstream.query`: a caller switching
    to another target must restore both first.
    """
    request, upstream = ctx.request, ctx.upstream
    url = resolve_url(target, driver, llm.model or "", request.path, stream=llm.stream)
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
    else:
        upstream.body = None
    driver.prepare_headers(request.headers)
    query = apply_auth(target.auth, request.headers, upstream.query)
    upstream.query = driver.configure(target.model.options, request.headers, query)
    upstream.buffer_response = not llm.stream


def resolve_url(
    target: Target, driver: Driver, model: str, client_path: str, *, stream: bool = False
) -> UpstreamURL:
    """The upstream endpoint of `target`.

    `options.upstream_url` gives scheme, host, port and path verbatim (missing path: `/`;
    missing port: 443 for https, 80 for http). Otherwise the driver's default endpoint is used,
    with `options.upstream_path` replacing its path. In preserve mode the path is
    `options.upstream_path` or the client's request path. Leading slashes collapse to one.
    """
    options = target.model.options
    if options.upstream_url is not None:
        parts = urlsplit(options.upstream_url)
        scheme = parts.scheme
        url = UpstreamURL(
            scheme,
            parts.hostname or "",
            parts.port or _DEFAULT_PORTS[scheme],
            driver.upstream_path(parts.path or "/", stream),
        )
    else:
        default = driver.default_url(target.route_type, model, options, stream)
        if default is None:
            raise ValueError(f"provider {driver.name} needs 'model.options.upstream_url'")
        path = options.upstream_path or default.path
        url = UpstreamURL(default.scheme, default.host, default.port, path)
    if target.route_type == "preserve":
        url = UpstreamURL(url.scheme, url.host, url.port, options.upstream_path or client_path)
    path = _LEADING_SLASHES.sub("/", url.path, count=1)
    return UpstreamURL(url.scheme, url.host, url.port, path)


def host_header(url: UpstreamURL) -> str:
    """The Host header for `url`: the host, plus `:port` when it is not the scheme's default."""
    host = f"[{url.host}]" if ":" in url.host else url.host
    if _DEFAULT_PORTS.get(url.scheme) == url.port:
        return host
    return f"{host}:{url.port}"


def apply_auth(auth: Auth | None, headers: Headers, query: str) -> str:
    """Put the provider credentials on the upstream request; returns the new query string.

    Header auth sets `header_name: header_value`; query auth replaces every `param_name` of the
    query with `param_value`. With `allow_override` a value the client already sent is kept.

    Lockgate's choice, stricter than Kong: whenever credentials are configured, the client's
    `Authorization` header is removed unless it *is* the configured header and
    `allow_override` keeps it. The client's Authorization usually carries a gateway credential
    (e.g. the consumer key the OpenAI SDK sends as a bearer token) that the provider must
    never see. With no auth configured the client's headers pass through (bring-your-own-key).
    """
    if auth is None or not (auth.uses_header or auth.uses_param):
        return query
    if auth.uses_header:
        assert auth.header_name is not None and auth.header_value is not None
        if not (auth.allow_override and auth.header_name in headers):
            headers.set(auth.header_name, auth.header_value)
    if not (auth.uses_header and (auth.header_name or "").lower() == "authorization"):
        headers.remove("Authorization")
    if auth.uses_param and auth.param_location == "query":
        assert auth.param_name is not None and auth.param_value is not None
        return _set_query_param(query, auth.param_name, auth.param_value, auth.allow_override)
    return query


def _set_query_param(query: str, name: str, value: str, allow_override: bool) -> str:
    # Work on the raw `&`-separated pairs so the client's other arguments keep their encoding.
    pairs = [pair for pair in query.split("&") if pair]
    named = [pair for pair in pairs if unquote_plus(pair.split("=", 1)[0]) == name]
    if named and allow_override:
        return query
    kept = [pair for pair in pairs if pair not in named]
    kept.append(urlencode({name: value}))
    return "&".join(kept)
