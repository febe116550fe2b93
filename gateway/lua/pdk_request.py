"""`kong.request`: read the client's request (Kong PDK semantics, kong/pdk/request.lua).

Headers are the live set (`ctx.request.headers`), so a header set by an earlier plugin is seen,
as in Kong. The raw body is the replacement body if one was set (`kong.service.request.
set_raw_body` replaces nginx's request body, which `get_raw_body` reads); method, path and query
are the client's.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from gateway.headers import Headers
from gateway.lua.binding import Binding, int_arg, opt_text_arg, text_arg, to_wire
from gateway.lua.convert import Converter, LuaConversionError

DEFAULT_MAX = 100


def find_header(headers: Headers, name: str) -> str | None:
    """First value of `name`, case-insensitive, with `_` and `-` interchangeable (Kong)."""
    wanted = name.lower().replace("_", "-")
    value = headers.get(wanted)
    if value is not None:
        return value
    keys = headers.lower_names()
    if "_" not in "".join(keys):
        return None  # without a `_` spelling, `get` has already looked at every name
    for key, (_, item) in zip(keys, headers.items(), strict=True):
        if key.replace("_", "-") == wanted:
            return item
    return None


def parse_query(raw: str, limit: int) -> tuple[list[tuple[str, str | bool]], bool]:
    """ngx.req.get_uri_args: decoded pairs (`True` for a bare key), empty keys dropped."""
    pairs: list[tuple[str, str | bool]] = []
    for part in raw.split("&"):
        if not part:
            continue
        key, sep, value = part.partition("=")
        if not key:
            continue
        if len(pairs) == limit:
            return pairs, True
        pairs.append((unquote_plus(key), unquote_plus(value) if sep else True))
    return pairs, False


class RequestApi:
    """Python halves of `kong.request.*` for one sandbox."""

    __slots__ = ("_b", "_conv")

    def __init__(self, binding: Binding, converter: Converter) -> None:
        self._b = binding
        self._conv = converter

    def exports(self) -> dict[bytes, Callable[..., Any]]:
        prefix = b"kong.request."
        names = (
            "get_header",
            "get_headers",
            "get_method",
            "get_path",
            "get_raw_path",
            "get_path_with_query",
            "get_raw_query",
            "get_query",
            "get_query_arg",
            "get_scheme",
            "get_host",
            "get_port",
            "get_forwarded_scheme",
            "get_forwarded_host",
            "get_forwarded_port",
            "get_forwarded_path",
            "get_forwarded_prefix",
            "get_http_version",
            "get_start_time",
            "get_id",
            "get_raw_body",
            "get_body",
        )
        return {prefix + n.encode(): getattr(self, n) for n in names}

    def get_header(self, name: object = None) -> bytes | None:
        wanted = name.decode("latin-1") if type(name) is bytes else text_arg(name, "header name")
        value = find_header(self._b.ctx.request.headers, wanted)
        return None if value is None else to_wire(value)

    def get_headers(self, max_headers: object = None) -> tuple[Any, bytes | None]:
        """A table of lower-cased names to a value or an array; the Lua side adds lookup
        normalisation. Second result "truncated" past the limit, as ngx.req.get_headers."""
        limit = self._limit(max_headers, "max_headers")
        grouped: dict[bytes, list[bytes]] = {}
        truncated = False
        for count, (name, value) in enumerate(self._b.ctx.request.headers):
            if count == limit:
                truncated = True
                break
            grouped.setdefault(to_wire(name.lower()), []).append(to_wire(value))
        return self._grouped_table(grouped), b"truncated" if truncated else None

    def get_method(self) -> bytes:
        return to_wire(self._b.ctx.request.method.upper())

    def get_path(self) -> bytes:
        return to_wire(self._b.ctx.request.path)

    def get_raw_path(self) -> bytes:
        return to_wire(self._b.ctx.request.raw_path)

    def get_path_with_query(self) -> bytes:
        request = self._b.ctx.request
        query = request.raw_query
        return to_wire(request.raw_path + ("?" + query if query else ""))

    def get_raw_query(self) -> bytes:
        return to_wire(self._b.ctx.request.raw_query)

    def get_query(self, max_args: object = None) -> tuple[Any, bytes | None]:
        pairs, truncated = parse_query(
            self._b.ctx.request.raw_query, self._limit(max_args, "max_args")
        )
        grouped: dict[bytes, list[Any]] = {}
        for key, value in pairs:
            grouped.setdefault(to_wire(key), []).append(
                value if isinstance(value, bool) else to_wire(value)
            )
        return self._grouped_table(grouped), b"truncated" if truncated else None

    def get_query_arg(self, name: object = None) -> bytes | bool | None:
        wanted = text_arg(name, "query argument name")
        pairs, _ = parse_query(self._b.ctx.request.raw_query, DEFAULT_MAX)
        for key, value in pairs:
            if key == wanted:
                return value if isinstance(value, bool) else to_wire(value)
        return None

    def get_scheme(self) -> bytes:
        return to_wire(self._b.ctx.request.scheme.lower())

    def get_host(self) -> bytes:
        return to_wire(self._b.ctx.request.host.lower())

    def get_port(self) -> int:
        return self._b.ctx.request.port

    # No trusted_ips are configured, so the forwarded values are the direct ones, as in Kong.
    get_forwarded_scheme = get_scheme
    get_forwarded_host = get_host
    get_forwarded_port = get_port

    def get_forwarded_path(self) -> bytes:
        return self.get_path()

    def get_forwarded_prefix(self) -> bytes | None:
        """The prefix the router stripped (X-Forwarded-Prefix it sends upstream); nil before
        routing (rewrite) and when nothing was stripped. A client's own header is never trusted."""
        ctx = self._b.ctx
        if ctx.route is None:
            return None
        value = ctx.request.headers.get("x-forwarded-prefix")
        return None if value is None else to_wire(value)

    def get_http_version(self) -> float | None:
        try:
            return float(self._b.ctx.request.http_version)
        except ValueError:
            return None

    def get_start_time(self) -> float:
        """Milliseconds since the epoch."""
        return float(int(self._b.ctx.request.start_time * 1000))

    def get_id(self) -> bytes:
        return to_wire(self._b.ctx.request_id)

    def get_raw_body(self) -> bytes:
        ctx = self._b.ctx
        return ctx.upstream.body if ctx.upstream.body is not None else ctx.request.body

    def get_body(
        self, mimetype: object = None, max_args: object = None, max_file_size: object = None
    ) -> tuple[Any, bytes | None, bytes | None]:
        """(table, nil, mimetype) or (nil, err, mimetype), as kong.request.get_body."""
        explicit = opt_text_arg(mimetype, "mimetype")
        ctype = explicit or self._content_type()
        if not ctype:
            return None, b"missing content type", None
        body = self.get_raw_body()
        if "application/x-www-form-urlencoded" in ctype:
            limit = self._limit(max_args, "max_args")
            fields = parse_qsl(body.decode("latin-1"), keep_blank_values=True)[:limit]
            grouped: dict[bytes, list[Any]] = {}
            for key, value in fields:
                grouped.setdefault(to_wire(key), []).append(to_wire(value))
            return self._grouped_table(grouped), None, to_wire(ctype)
        if "application/json" in ctype:
            try:
                parsed = json.loads(body)
            except (ValueError, UnicodeDecodeError):
                return None, b"invalid json body", to_wire(ctype)
            if not isinstance(parsed, dict | list):
                return None, b"invalid json body", to_wire(ctype)
            try:
                return self._conv.to_lua(parsed), None, to_wire(ctype)
            except LuaConversionError:
                return None, b"invalid json body", to_wire(ctype)
        return None, to_wire(f"unsupported content type '{ctype}'"), to_wire(ctype)

    def _content_type(self) -> str | None:
        value = self._b.ctx.request.headers.get("content-type")
        if not value:
            return None
        return value.split(";", 1)[0].strip().lower()

    def _limit(self, value: object, what: str) -> int:
        return DEFAULT_MAX if value is None else int_arg(value, what, 1, 1000)

    def _grouped_table(self, grouped: dict[bytes, list[Any]]) -> Any:
        conv = self._conv
        return conv.table(
            {k: v[0] if len(v) == 1 else conv.table(array=v) for k, v in grouped.items()}
        )
