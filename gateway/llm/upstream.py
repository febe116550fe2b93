"""Where an LLM request goes and how it authenticates (Kong's driver `configure_request`)."""

from __future__ import annotations

import re
from urllib.parse import unquote_plus, urlencode, urlsplit

from gateway.context import RequestContext
from gateway.llm.json_codec import dumps
from gateway.llm.providers.base import Driver, UpstreamURL
from gateway.llm.request import LLMRequest
from gateway.llm.schema import Target

_LEADING_SLASHES = re.compile(r"^/*")
_DEFAULT_PORTS = {"http": 80, "https": 443}


class UpstreamPlan:
    """How requests for one target go upstream (Kong's driver `configure_request` plus
    `set_body`), worked out once per snapshot: the endpoint and Host header when the request
    cannot change them, the credentials and the provider's fixed headers.

    Credentials: header auth sets `header_name: header_value`; query auth replaces every
    `param_name` of the query with `param_value`. With `allow_override` a value the client
    already sent is kept.

    Lockgate's choice, stricter than Kong: whenever credentials are configured, the client's
    `Authorization` header is removed unless it *is* the configured header and
    `allow_override` keeps it. The client's Authorization usually carries a gateway credential
    (e.g. the consumer key the OpenAI SDK sends as a bearer token) that the provider must
    never see. With no auth configured the client's headers pass through (bring-your-own-key).
    """

    __slots__ = (
        "_auth_header",
        "_auth_override",
        "_driver",
        "_driver_headers",
        "_endpoints",
        "_options",
        "_query_auth",
        "_strip_authorization",
        "_target",
    )

    def __init__(self, target: Target, driver: Driver) -> None:
        self._target, self._driver = target, driver
        self._options = target.model.options
        self._endpoints = _fixed_endpoints(target, driver)
        self._driver_headers = driver.request_headers(self._options)
        self._auth_header: tuple[str, str] | None = None
        self._auth_override = False
        self._query_auth: tuple[str, str, bool] | None = None
        self._strip_authorization = False
        auth = target.auth
        if auth is None or not (auth.uses_header or auth.uses_param):
            return
        if auth.header_name is not None and auth.header_value is not None:
            self._auth_header = (auth.header_name, auth.header_value)
            self._auth_override = auth.allow_override
        self._strip_authorization = not (
            auth.uses_header and (auth.header_name or "").lower() == "authorization"
        )
        if auth.uses_param and auth.param_location == "query":
            assert auth.param_name is not None and auth.param_value is not None
            self._query_auth = (auth.param_name, auth.param_value, auth.allow_override)

    def endpoint(self, model: str, client_path: str, stream: bool) -> tuple[UpstreamURL, str]:
        """The upstream URL and Host header of one request."""
        fixed = self._endpoints
        if fixed is not None:
            return fixed[stream]
        url = resolve_url(self._target, self._driver, model, client_path, stream=stream)
        return url, host_header(url)

    def apply(self, ctx: RequestContext, llm: LLMRequest) -> None:
        """Point `ctx.upstream` at the target and make the request it sends: endpoint, Host,
        the provider-format body, `Accept-Encoding: identity`, the credentials, then the
        provider's own query/headers (`api-version`, `anthropic-version`). Non-streaming
        answers are buffered so they can be transformed.

        It changes `ctx.request.headers` and starts from `ctx.upstream.query`: a caller
        switching to another target must restore both first.
        """
        request, upstream = ctx.request, ctx.upstream
        headers = request.headers
        url, upstream.host_header = self.endpoint(llm.model or "", request.path, llm.stream)
        upstream.scheme, upstream.host, upstream.port, upstream.path = (
            url.scheme,
            url.host,
            url.port,
            url.path,
        )
        if llm.body is not None:
            upstream.method = "POST"
            upstream.body = dumps(llm.body)
            headers.set("Content-Type", "application/json")
            # The client's framing describes the client's body, not ours; the proxy frames ours.
            headers.remove("Content-Length")
            headers.remove("Transfer-Encoding")
        else:
            upstream.body = None
        # Kong's `pre_request`. Identity means the proxy never decompresses: what it buffers
        # or streams is what it parses.
        headers.set("Accept-Encoding", "identity")
        auth_header = self._auth_header
        if auth_header is not None and not (self._auth_override and auth_header[0] in headers):
            headers.set(auth_header[0], auth_header[1])
        if self._strip_authorization:
            headers.remove("Authorization")
        query = upstream.query
        if self._query_auth is not None:
            query = _set_query_param(query, *self._query_auth)
        for name, value in self._driver_headers:
            headers.set(name, value)
        upstream.query = self._driver.configure(self._options, query)
        upstream.buffer_response = not llm.stream


def _fixed_endpoints(target: Target, driver: Driver) -> tuple[tuple[UpstreamURL, str], ...] | None:
    """The endpoint without and with streaming, when neither the client's path (preserve
    mode) nor the client's model (in a default URL) can change it; None otherwise."""
    if target.route_type == "preserve":
        return None
    if target.model.options.upstream_url is None and target.model.name is None:
        return None
    model = target.model.name or ""
    try:
        urls = [resolve_url(target, driver, model, "/", stream=stream) for stream in (False, True)]
    except ValueError:
        return None  # no endpoint: each request reports it
    return tuple((url, host_header(url)) for url in urls)


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


def _set_query_param(query: str, name: str, value: str, allow_override: bool) -> str:
    # Work on the raw `&`-separated pairs so the client's other arguments keep their encoding.
    pairs = [pair for pair in query.split("&") if pair]
    named = [pair for pair in pairs if unquote_plus(pair.split("=", 1)[0]) == name]
    if named and allow_override:
        return query
    kept = [pair for pair in pairs if pair not in named]
    kept.append(urlencode({name: value}))
    return "&".join(kept)
