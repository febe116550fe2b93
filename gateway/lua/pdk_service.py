"""`kong.service.request`: change what goes upstream (kong/pdk/service/request.lua semantics).

Headers go to `ctx.request.headers`, the live set later plugins read and the proxy forwards;
path, query, method, scheme and body go to `ctx.upstream`. Allowed in rewrite and access only.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote_plus

import lupa.lua54 as lupa

from gateway.lua.binding import (
    REWRITE_ACCESS,
    Binding,
    PdkError,
    header_name_arg,
    header_value_text,
    header_values,
    lua_array,
    lua_items,
    opt_text_arg,
    text_arg,
    type_name,
)
from gateway.lua.convert import Converter, LuaConversionError

_METHODS = frozenset(
    (
        "GET",
        "HEAD",
        "PUT",
        "POST",
        "DELETE",
        "OPTIONS",
        "MKCOL",
        "COPY",
        "MOVE",
        "PROPFIND",
        "PROPPATCH",
        "LOCK",
        "UNLOCK",
        "PATCH",
        "TRACE",
    )
)
_CR, _LF, _COLON = ord("\r"), ord("\n"), ord(":")
# Characters kept as-is in a path: RFC 3986 unreserved, sub-delims, ':', '@', '/' and '%'.
_PATH_SAFE = "/:@!$&'()*+,;=%-._~"


def encode_args(args: object) -> str:
    """Kong's encode_args: keys sorted, values URL-encoded, `true` a bare key, `false` dropped,
    arrays repeated in order."""
    if lupa.lua_type(args) != "table":
        raise PdkError(f"args must be a table, got {type_name(args)}")
    pieces: list[str] = []
    items = sorted(
        ((text_arg(k, "argument name"), v) for k, v in lua_items(args)),
        key=lambda kv: kv[0],
    )
    for key, value in items:
        values = lua_array(value) if lupa.lua_type(value) == "table" else [value]
        for item in values:
            if item is True:
                pieces.append(quote(key, safe=""))
            elif item is not False:
                text = header_value_text(item, key)
                pieces.append(f"{quote(key, safe='')}={quote(text, safe='')}")
    return "&".join(pieces)


class ServiceRequestApi:
    """Python halves of `kong.service.request.*` for one sandbox."""

    __slots__ = ("_b", "_conv")

    def __init__(self, binding: Binding, converter: Converter) -> None:
        self._b = binding
        self._conv = converter

    def exports(self) -> dict[bytes, Callable[..., Any]]:
        prefix = b"kong.service.request."
        names = (
            "set_header",
            "add_header",
            "clear_header",
            "set_headers",
            "set_path",
            "set_raw_query",
            "set_query",
            "clear_query_arg",
            "set_method",
            "set_scheme",
            "set_raw_body",
            "set_body",
            "enable_buffering",
        )
        return {prefix + n.encode(): getattr(self, n) for n in names}

    def set_header(self, name: object = None, value: object = None) -> None:
        binding = self._b
        binding.check_phase(REWRITE_ACCESS)
        if (
            type(name) is bytes
            and type(value) is bytes
            and name
            and _COLON not in name
            and _CR not in name
            and _LF not in name
            and _CR not in value
            and _LF not in value
        ):
            # The usual call, two plain strings: what the checks below accept, checked inline
            # (byte values as ints: `bytes in bytes` is several times slower).
            self._set(name.decode("latin-1"), [value.decode("latin-1")])
            return
        header = header_name_arg(name)
        self._set(header, header_values(value, header))

    def add_header(self, name: object = None, value: object = None) -> None:
        self._b.check_phase(REWRITE_ACCESS)
        header = header_name_arg(name)
        headers = self._b.ctx.request.headers
        values = header_values(value, header)
        self._b.charge_texts(values)
        for item in values:
            headers.add(header, item)

    def clear_header(self, name: object = None) -> None:
        self._b.check_phase(REWRITE_ACCESS)
        self._b.ctx.request.headers.remove(header_name_arg(name))

    def set_headers(self, headers: object = None) -> None:
        self._b.check_phase(REWRITE_ACCESS)
        if lupa.lua_type(headers) != "table":
            raise PdkError(f"headers must be a table, got {type_name(headers)}")
        checked = []
        for key, value in lua_items(headers):
            name = header_name_arg(key)
            checked.append((name, header_values(value, name)))
        for name, values in sorted(checked, key=lambda item: item[0]):
            self._set(name, values)

    def set_path(self, path: object = None) -> None:
        self._b.check_phase(REWRITE_ACCESS)
        text = text_arg(path, "path")
        if not text.startswith("/"):
            raise PdkError("path must start with /")
        self._b.ctx.upstream.path = quote(text, safe=_PATH_SAFE)

    def set_raw_query(self, query: object = None) -> None:
        self._b.check_phase(REWRITE_ACCESS)
        self._b.ctx.upstream.query = text_arg(query, "query")

    def set_query(self, args: object = None) -> None:
        self._b.check_phase(REWRITE_ACCESS)
        self._b.ctx.upstream.query = encode_args(args)

    def clear_query_arg(self, name: object = None) -> None:
        self._b.check_phase(REWRITE_ACCESS)
        wanted = text_arg(name, "query argument name")
        upstream = self._b.ctx.upstream
        kept = [
            part
            for part in upstream.query.split("&")
            if part and unquote_plus(part.partition("=")[0]) != wanted
        ]
        upstream.query = "&".join(kept)

    def set_method(self, method: object = None) -> None:
        self._b.check_phase(REWRITE_ACCESS)
        text = text_arg(method, "method")
        if text not in _METHODS:
            raise PdkError(f"invalid method: {text}")
        self._b.ctx.upstream.method = text

    def set_scheme(self, scheme: object = None) -> None:
        self._b.check_phase(REWRITE_ACCESS)
        text = text_arg(scheme, "scheme")
        if text not in ("http", "https"):
            raise PdkError(f"invalid scheme: {text}")
        self._b.ctx.upstream.scheme = text

    def set_raw_body(self, body: object = None) -> None:
        self._b.check_phase(REWRITE_ACCESS)
        if not isinstance(body, bytes):
            raise PdkError(f"body must be a string, got {type_name(body)}")
        self._replace_body(body)

    def set_body(
        self, args: object = None, mimetype: object = None
    ) -> tuple[bool | None, bytes | None]:
        """(true) or (nil, err), as kong.service.request.set_body."""
        self._b.check_phase(REWRITE_ACCESS)
        if lupa.lua_type(args) != "table":
            raise PdkError(f"args must be a table, got {type_name(args)}")
        explicit = opt_text_arg(mimetype, "mimetype")
        ctype = explicit or self._b.ctx.request.headers.get("content-type")
        if not ctype:
            return None, b"content type was neither explicitly given nor found in headers"
        media = ctype.split(";", 1)[0].strip().lower()
        if media == "application/json":
            try:
                body = self._conv.encode_json(args)
            except (LuaConversionError, RecursionError) as exc:
                return None, str(exc).encode()
        elif media == "application/x-www-form-urlencoded":
            body = encode_args(args).encode("latin-1", "replace")
        else:
            return None, f"unsupported content type '{media}'".encode()
        if explicit is not None:
            self._b.ctx.request.headers.set("Content-Type", explicit)
        self._replace_body(body)
        return True, None

    def enable_buffering(self) -> None:
        self._b.check_phase(REWRITE_ACCESS)
        self._b.ctx.upstream.buffer_response = True

    def _set(self, name: str, values: list[str]) -> None:
        self._b.charge_texts(values)
        headers = self._b.ctx.request.headers
        if not values:
            headers.remove(name)
            return
        headers.set(name, values[0])
        for extra in values[1:]:
            headers.add(name, extra)
        if name.lower() == "host":
            self._b.ctx.upstream.host_header = values[0]

    def _replace_body(self, body: bytes) -> None:
        self._b.charge(len(body))
        ctx = self._b.ctx
        ctx.upstream.body = body
        # The live headers go upstream: keep the framing consistent with the new body.
        ctx.request.headers.remove("Transfer-Encoding")
        ctx.request.headers.set("Content-Length", str(len(body)))
