"""The Python halves of the minimal `ngx` (OpenResty) API offered to sandboxed code.

- `ngx.var.<name>`: request_uri, uri, args (settable: the upstream query), host, hostname,
  scheme, server_port, remote_addr, request_method, request_id, upstream_uri (settable),
  http_<header>; unknown names read as nil.
- `ngx.status`, `ngx.say`/`ngx.print` (buffered) and `ngx.exit(status)`: a status >= 400 with no
  output is Kong's error response with the default message (ngx.exit(400) -> "Bad request");
  buffered output is sent with `ngx.status` (default 200); ngx.exit(0) (ngx.OK) ends the phase.
- `ngx.arg[1]`/`ngx.arg[2]` in body_filter: the chunk (settable) and the eof flag.
- `ngx.now`, `ngx.time`, base64 and URI escaping helpers.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, unquote

from gateway import responses
from gateway.context import Exit, RequestContext
from gateway.lua.binding import Binding, PdkError, from_wire, int_arg, text_arg, to_wire
from gateway.lua.pdk_request import find_header

_TEXT_PLAIN = (("Content-Type", "text/plain"),)


def _with_query(path: str, query: str) -> str:
    return path + ("?" + query if query else "")


_VARS: dict[str, Callable[[RequestContext], str | None]] = {
    "request_uri": lambda c: _with_query(c.request.raw_path, c.request.raw_query),
    "uri": lambda c: c.request.path,
    "args": lambda c: c.upstream.query or None,
    "query_string": lambda c: c.upstream.query or None,
    "is_args": lambda c: "?" if c.upstream.query else "",
    "host": lambda c: c.request.host.lower(),
    "hostname": lambda c: c.request.host.lower(),
    "scheme": lambda c: c.request.scheme,
    "server_port": lambda c: str(c.request.port),
    "remote_addr": lambda c: c.request.client_ip,
    "request_method": lambda c: c.request.method,
    "request_id": lambda c: c.request_id,
    "kong_request_id": lambda c: c.request_id,
    "upstream_uri": lambda c: _with_query(c.upstream.path, c.upstream.query),
    "server_protocol": lambda c: f"HTTP/{c.request.http_version}",
    "content_type": lambda c: c.request.headers.get("content-type"),
    "content_length": lambda c: c.request.headers.get("content-length"),
}


class NgxApi:
    """Python halves of `ngx.*` for one sandbox (the Lua side is in pdk.py)."""

    __slots__ = ("_b",)

    def __init__(self, binding: Binding) -> None:
        self._b = binding

    def exports(self) -> dict[bytes, Callable[..., Any]]:
        return {
            b"_ngx.var_get": self.var_get,
            b"_ngx.var_set": self.var_set,
            b"_ngx.status_get": self.status_get,
            b"_ngx.status_set": self.status_set,
            b"_ngx.out": self.out,
            b"_ngx.exit": self.exit,
            b"_ngx.arg_get": self.arg_get,
            b"_ngx.arg_set": self.arg_set,
            b"ngx.now": self.now,
            b"ngx.time": self.time,
            b"ngx.encode_base64": self.encode_base64,
            b"ngx.decode_base64": self.decode_base64,
            b"ngx.escape_uri": self.escape_uri,
            b"ngx.unescape_uri": self.unescape_uri,
            b"ngx.md5": self.md5,
            b"ngx.worker.pid": os.getpid,
        }

    def var_get(self, name: object) -> bytes | None:
        if not isinstance(name, bytes):
            return None
        key = from_wire(name).lower()
        ctx = self._b.ctx
        request = ctx.request
        if key.startswith("http_"):
            value = find_header(request.headers, key[5:])
            return None if value is None else to_wire(value)
        getter = _VARS.get(key)
        value = getter(ctx) if getter is not None else None
        return None if value is None else to_wire(value)

    def var_set(self, name: object, value: object) -> None:
        key = text_arg(name, "variable name").lower()
        upstream = self._b.ctx.upstream
        if key == "args":
            upstream.query = "" if value is None else text_arg(value, "value")
        elif key == "upstream_uri":
            path, _, query = text_arg(value, "value").partition("?")
            upstream.path = path or "/"
            upstream.query = query
        else:
            raise PdkError(f'variable "{key}" cannot be assigned a value')

    def status_get(self) -> int:
        return self._b.ngx_status

    def status_set(self, value: object) -> None:
        status = int_arg(value, "status", 0, 999)
        binding = self._b
        binding.ngx_status = status
        if binding.head is not None:
            binding.head.status = status

    def out(self, data: object) -> None:
        if not isinstance(data, bytes):
            raise PdkError("output must be a string")
        self._b.charge(len(data))
        self._b.ngx_output.append(data)

    def exit(self, status: object) -> None:
        binding = self._b
        code = int_arg(status, "status", -5, 999)
        if binding.phase not in ("rewrite", "access"):
            return  # ends the chunk; the response is already on its way
        if binding.ngx_output:
            binding.exit = output_exit(binding)
        elif code >= 400:
            binding.exit = responses.error(binding.ctx, code)
        elif code >= 200:
            binding.exit = Exit(code, b"", ())
        else:
            return  # ngx.OK and friends: leave the phase, no response
        binding.ctx.response_source = "exit"

    def arg_get(self, index: object) -> bytes | bool | None:
        if index == 1:
            return self._b.body_chunk
        if index == 2:
            return self._b.body_eof
        return None

    def arg_set(self, index: object, value: object) -> None:
        if self._b.phase != "body_filter":
            raise PdkError(f"API disabled in the current context ({self._b.phase})")
        if index == 1:
            self._b.body_chunk = _bytes_arg(value) if value is not None else b""
        elif index == 2:
            self._b.body_eof = bool(value)

    @staticmethod
    def now() -> float:
        return round(time.time(), 3)

    @staticmethod
    def time() -> int:
        return int(time.time())

    @staticmethod
    def encode_base64(data: object, no_padding: object = None) -> bytes:
        encoded = base64.b64encode(_bytes_arg(data))
        return encoded.rstrip(b"=") if no_padding else encoded

    @staticmethod
    def decode_base64(data: object) -> bytes | None:
        raw = _bytes_arg(data)
        try:
            return base64.b64decode(raw + b"=" * (-len(raw) % 4), validate=True)
        except (binascii.Error, ValueError):
            return None

    @staticmethod
    def escape_uri(data: object) -> bytes:
        return quote(_bytes_arg(data), safe="").encode()

    @staticmethod
    def unescape_uri(data: object) -> bytes:
        return unquote(_bytes_arg(data).decode("latin-1"), encoding="latin-1").encode("latin-1")

    @staticmethod
    def md5(data: object) -> bytes:
        return hashlib.md5(_bytes_arg(data), usedforsecurity=False).hexdigest().encode()


def output_exit(binding: Binding) -> Exit:
    """The response made of what ngx.say/ngx.print buffered, with ngx.status (default 200)."""
    return Exit(binding.ngx_status or 200, b"".join(binding.ngx_output), _TEXT_PLAIN)


def _bytes_arg(value: object) -> bytes:
    if isinstance(value, bytes):
        return value
    return text_arg(value, "argument").encode("latin-1")
