"""The `kong` PDK and minimal `ngx` for one sandbox, bound to one request at a time.

`Pdk(sandbox, plugin_name, instance_id)` builds the Lua tables once (per compiled plugin
instance); `globals` is what every chunk's environment gets. Per call, `binding.bind(ctx, phase)`
points every PDK function at the current `RequestContext` (a few attribute writes), and
`binding.unbind()` releases it.

Offered: `kong.request.*` (pdk_request), `kong.service.request.*` (pdk_service),
`kong.response.*` (pdk_response), `kong.router.*` and `kong.service.set_target` (pdk_router),
`kong.client.get_ip/get_forwarded_ip/get_port/get_protocol/get_consumer/get_credential`,
`kong.ctx.shared/plugin` and `ngx.ctx` (proxies over `ctx.shared`,
`ctx.plugin_state(instance_id)` and `ctx.plugin_state(NGX_CTX)`; a table another plugin
instance stored reads as a copy, since each instance has its own runtime), `kong.log(...)`,
`kong.log.<level>` and `kong.log.set_serialize_value` (logger `lockgate.lua`), `ngx.*`
(pdk_ngx), `require "cjson"` / `"cjson.safe"`, and `print` (logged at notice). The PDK tables
are read-only views: a chunk cannot replace a PDK function for later requests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import lupa.lua54 as lupa

from gateway.lua.binding import (
    Binding,
    PdkError,
    lua_items,
    lua_number_text,
    text_arg,
    to_wire,
)
from gateway.lua.convert import EMPTY_ARRAY, NULL, Converter, LuaConversionError
from gateway.lua.pdk_lua import PDK_LUA
from gateway.lua.pdk_ngx import NgxApi
from gateway.lua.pdk_request import RequestApi
from gateway.lua.pdk_response import ResponseApi
from gateway.lua.pdk_router import RouterApi
from gateway.lua.pdk_service import ServiceRequestApi
from gateway.lua.sandbox import LuaSandbox

logger = logging.getLogger("lockgate.lua")

NGX_CTX = "ngx.ctx"
"""Key of `ngx.ctx` in `RequestContext.plugin_data` (instance ids are uuids: no clash)."""

_LEVELS = {
    b"alert": logging.CRITICAL,
    b"crit": logging.CRITICAL,
    b"err": logging.ERROR,
    b"warn": logging.WARNING,
    b"notice": logging.INFO,
    b"info": logging.INFO,
    b"debug": logging.DEBUG,
}
_SERIALIZE_MODES = (b"set", b"add", b"replace")

PURE_EXPORTS: frozenset[bytes] = frozenset(
    [b"kong.request." + name for name in (
        b"get_header", b"get_headers", b"get_method", b"get_path", b"get_raw_path",
        b"get_path_with_query", b"get_raw_query", b"get_query", b"get_query_arg", b"get_scheme",
        b"get_host", b"get_port", b"get_forwarded_scheme", b"get_forwarded_host",
        b"get_forwarded_port", b"get_forwarded_path", b"get_forwarded_prefix",
        b"get_http_version", b"get_start_time", b"get_id", b"get_raw_body", b"get_body",
    )]
    + [b"kong.response." + name for name in (
        b"get_header", b"get_headers", b"get_status", b"get_source",
    )]
    + [b"kong.client." + name for name in (
        b"get_ip", b"get_forwarded_ip", b"get_port", b"get_forwarded_port", b"get_protocol",
        b"get_consumer", b"get_credential",
    )]
    + [b"kong.router.get_route", b"kong.router.get_service"]
    + [b"ngx." + name for name in (
        b"now", b"time", b"encode_base64", b"decode_base64", b"escape_uri", b"unescape_uri",
        b"md5", b"worker.pid",
    )]
    + [b"_ngx.var_get", b"_ngx.status_get", b"_ngx.arg_get", b"_ctx_get", b"_log"]
    + [b"_cjson." + name for name in (b"encode", b"decode", b"safe_encode", b"safe_decode")]
)  # fmt: skip
"""PDK callables that change nothing a second run would see: they return fresh values (the
pdk_lua wrapper of `_ctx_get` touches when it returns a stored table). Log lines are not counted
as changes: a call moved to the worker thread may repeat the lines it logged before the move.
Every other callable touches the call (see `LuaSandbox.touch`)."""


class Pdk:
    """See the module docstring."""

    __slots__ = ("_conv", "_instance_id", "_own", "_plugin_name", "binding", "globals")

    def __init__(self, sandbox: LuaSandbox, plugin_name: str, instance_id: str) -> None:
        self._plugin_name = plugin_name
        self._instance_id = instance_id
        self.binding = Binding(sandbox.limits.max_memory)
        self._conv = conv = Converter(sandbox.runtime)
        # Identity function of this runtime: lupa refuses a Lua value of another runtime.
        self._own = sandbox.execute_privileged(b"return function(x) return x end")
        exports: dict[bytes, Callable[..., Any]] = {}
        exports.update(RequestApi(self.binding, conv).exports())
        exports.update(ServiceRequestApi(self.binding, conv).exports())
        exports.update(ResponseApi(self.binding, conv).exports())
        exports.update(NgxApi(self.binding).exports())
        exports.update(RouterApi(self.binding, conv).exports())
        exports.update({b"_cjson." + k: v for k, v in conv.cjson_functions().items()})
        exports.update(self._own_exports())
        if unknown := PURE_EXPORTS - exports.keys():
            raise RuntimeError(f"PURE_EXPORTS names no export: {sorted(unknown)}")
        build = sandbox.execute_privileged(b"return function(...) " + PDK_LUA + b" end")
        pure = conv.table(dict.fromkeys(PURE_EXPORTS, True))
        made = build(
            conv.table(exports), sandbox.signal_exit, NULL, EMPTY_ARRAY, sandbox.touch, pure
        )
        self.globals: dict[bytes, object] = dict(made.items())

    def _own_exports(self) -> dict[bytes, Callable[..., Any]]:
        return {
            b"_log": self._log,
            b"_set_serialize_value": self._set_serialize_value,
            b"_ctx_get": self._ctx_get,
            b"_ctx_set": self._ctx_set,
            b"kong.client.get_ip": self._client_ip,
            b"kong.client.get_forwarded_ip": self._client_ip,
            b"kong.client.get_port": self._client_port,
            b"kong.client.get_forwarded_port": self._client_port,
            b"kong.client.get_protocol": self._client_protocol,
            b"kong.client.get_consumer": self._client_consumer,
            b"kong.client.get_credential": self._client_credential,
        }

    # kong.log

    def _log(self, level: bytes, message: bytes) -> None:
        py_level = _LEVELS.get(level, logging.INFO)
        if logger.isEnabledFor(py_level):
            logger.log(
                py_level,
                "[%s] %s",
                self._plugin_name,
                message.decode("utf-8", "replace") if isinstance(message, bytes) else message,
            )

    def _set_serialize_value(self, key: object, value: object, options: object = None) -> None:
        name = text_arg(key, "key")
        mode = options[b"mode"] if lupa.lua_type(options) == "table" else None  # type: ignore[index]
        mode = mode or b"set"
        if mode not in _SERIALIZE_MODES:
            raise PdkError("mode must be 'set', 'add' or 'replace'")
        self.binding.charge(len(name) + (len(value) if isinstance(value, bytes) else 0) + 32)
        fields = self.binding.ctx.log_fields
        if (mode == b"add" and name in fields) or (mode == b"replace" and name not in fields):
            return
        try:
            fields[name] = self._conv.to_python(value)
        except LuaConversionError as exc:
            raise PdkError(f"value cannot be serialized: {exc}") from None

    # kong.ctx.shared / kong.ctx.plugin

    def _ctx_table(self, which: bytes) -> dict[str, object]:
        ctx = self.binding.ctx
        if which == b"shared":
            return ctx.shared
        if which == b"ngx":
            return ctx.plugin_state(NGX_CTX)
        return ctx.plugin_state(self._instance_id)

    def _ctx_get(self, which: bytes, key: object) -> object:
        value = self._ctx_table(which).get(_ctx_key(key))
        if value is None or isinstance(value, bytes | bool | int | float):
            return value
        if isinstance(value, str):
            return value.encode("utf-8", "surrogateescape")
        if lupa.lua_type(value) is not None:
            try:
                return self._own(value)  # stored by this runtime: the same object
            except lupa.LuaError:
                return self._foreign(value)  # stored by another plugin instance's runtime
        try:
            return self._conv.to_lua(value)
        except LuaConversionError:
            return None  # a Python object another plugin stored: not visible to Lua

    def _foreign(self, value: object, depth: int = 0) -> object:
        """A copy in this runtime of another runtime's value: tables copied deeply, functions
        and other runtime-bound values left out (nil)."""
        if isinstance(value, bytes | int | float):  # bool is an int
            return value
        if lupa.lua_type(value) != "table" or depth > 100:
            return None
        items: dict[object, object] = {}
        for key, item in lua_items(value):
            copied = self._foreign(item, depth + 1)
            if copied is not None and isinstance(key, bytes | int | float):
                items[key] = copied
        return self._conv.table(items)

    def _ctx_set(self, which: bytes, key: object, value: object) -> None:
        table = self._ctx_table(which)
        name = _ctx_key(key)
        self.binding.charge(len(name) + (len(value) if isinstance(value, bytes) else 0) + 32)
        if value is None:
            table.pop(name, None)
        else:
            # Strings become str so Python plugins read text; tables stay Lua objects.
            stored = value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else value
            table[name] = stored

    # kong.client

    def _client_ip(self) -> bytes:
        return to_wire(self.binding.ctx.request.client_ip)

    def _client_port(self) -> None:
        return None  # the proxy does not record the client's port

    def _client_protocol(self) -> bytes:
        return to_wire(self.binding.ctx.request.scheme.lower())

    def _client_consumer(self) -> Any:
        consumer = self.binding.ctx.consumer
        if consumer is None:
            return None
        fields = {
            b"id": consumer.id,
            b"username": consumer.username,
            b"custom_id": consumer.custom_id,
        }
        return self._conv.table({k: to_wire(v) for k, v in fields.items() if v is not None})

    def _client_credential(self) -> Any:
        credential = self.binding.ctx.credential
        if credential is None:
            return None
        conv = self._conv
        owner = conv.table({b"id": to_wire(credential.consumer_id)})
        return conv.table({b"id": to_wire(credential.id), b"consumer": owner})


def _ctx_key(key: object) -> str:
    if isinstance(key, bytes):
        return key.decode("utf-8", "surrogateescape")
    if isinstance(key, int | float) and not isinstance(key, bool):
        return lua_number_text(key)
    raise PdkError("kong.ctx keys must be strings or numbers")
