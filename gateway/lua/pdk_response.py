"""`kong.response`: short-circuit responses and response headers (kong/pdk/response.lua).

`exit`/`error` record an `Exit` on the binding; their Lua wrappers then unwind the chunk (see
pdk.py), so the phase ends there. Header setters write to the response being filtered in
header_filter, else to `ctx.response` if it exists, else to `ctx.response_headers` (headers set
before the response exists, which the proxy applies to whatever response it sends).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lupa.lua54 as lupa

from gateway import responses
from gateway.context import Exit
from gateway.headers import Headers
from gateway.lua.binding import (
    REWRITE_ACCESS,
    Binding,
    PdkError,
    header_name_arg,
    header_values,
    int_arg,
    lua_items,
    opt_text_arg,
    to_wire,
    type_name,
)
from gateway.lua.convert import Converter
from gateway.lua.pdk_request import find_header

_HEADER_PHASES = ("rewrite", "access", "header_filter")


def exit_headers(headers: object) -> tuple[tuple[str, str], ...]:
    """A Lua table of headers (values may be arrays) as pairs, names in sorted order."""
    if headers is None:
        return ()
    if lupa.lua_type(headers) != "table":
        raise PdkError(f"headers must be a nil or table, got {type_name(headers)}")
    pairs: list[tuple[str, str]] = []
    for key, value in lua_items(headers):
        name = header_name_arg(key)
        pairs.extend((name, item) for item in header_values(value, name))
    pairs.sort(key=lambda pair: pair[0].lower())
    return tuple(pairs)


class ResponseApi:
    """Python halves of `kong.response.*` for one sandbox."""

    __slots__ = ("_b", "_conv")

    def __init__(self, binding: Binding, converter: Converter) -> None:
        self._b = binding
        self._conv = converter

    def exports(self) -> dict[bytes, Callable[..., Any]]:
        prefix = b"kong.response."
        names = (
            "set_header",
            "add_header",
            "clear_header",
            "set_headers",
            "get_header",
            "get_headers",
            "get_status",
            "set_status",
            "get_source",
        )
        exported = {prefix + n.encode(): getattr(self, n) for n in names}
        # Wrapped on the Lua side so that they unwind the chunk after recording the exit.
        exported[b"_exit"] = self.exit
        exported[b"_error"] = self.error
        return exported

    def exit(self, status: object = None, body: object = None, headers: object = None) -> None:
        binding = self._b
        binding.check_phase(REWRITE_ACCESS)
        code = int_arg(status, "code", 100, 599)
        extra = exit_headers(headers)
        if body is None:
            result = Exit(code, b"", extra)
        elif isinstance(body, bytes):
            result = Exit(code, body, extra)
        elif lupa.lua_type(body) == "table":
            result = responses.exit_json(code, self._conv.to_python(body), extra)
            if any(name.lower() == "content-type" for name, _ in extra):
                # An explicit Content-Type wins over the JSON default.
                result = Exit(code, result.body, extra)
        else:
            raise PdkError(f"body must be a nil, string or table, got {type_name(body)}")
        binding.charge(len(result.body))
        binding.ctx.response_source = "exit"
        binding.exit = result

    def error(self, status: object = None, message: object = None, headers: object = None) -> None:
        binding = self._b
        binding.check_phase(REWRITE_ACCESS)
        code = int_arg(status, "code", 400, 599)
        text = opt_text_arg(message, "message")
        ctx = binding.ctx
        ctx.response_source = "exit"
        binding.exit = responses.error(ctx, code, text, exit_headers(headers))

    def set_header(self, name: object = None, value: object = None) -> None:
        self._b.check_phase(_HEADER_PHASES)
        header = header_name_arg(name)
        if header.lower() == "transfer-encoding":
            return  # Kong ignores it (with a warning): nginx owns the framing.
        values = header_values(value, header)
        self._b.charge_texts(values)
        target = self._target()
        if not values:
            target.remove(header)
            return
        target.set(header, values[0])
        for item in values[1:]:
            target.add(header, item)

    def add_header(self, name: object = None, value: object = None) -> None:
        self._b.check_phase(_HEADER_PHASES)
        header = header_name_arg(name)
        if header.lower() == "transfer-encoding":
            return
        target = self._target()
        values = header_values(value, header)
        self._b.charge_texts(values)
        for item in values:
            target.add(header, item)

    def clear_header(self, name: object = None) -> None:
        self._b.check_phase(_HEADER_PHASES)
        self._target().remove(header_name_arg(name))

    def set_headers(self, headers: object = None) -> None:
        self._b.check_phase(_HEADER_PHASES)
        if lupa.lua_type(headers) != "table":
            raise PdkError(f"headers must be a table, got {type_name(headers)}")
        target = self._target()
        pairs = exit_headers(headers)
        self._b.charge_texts([value for _, value in pairs])
        for name in {name.lower() for name, _ in pairs}:
            target.remove(name)
        for name, value in pairs:
            if name.lower() != "transfer-encoding":
                target.add(name, value)

    def get_header(self, name: object = None) -> bytes | None:
        value = find_header(self._target(), header_name_arg(name))
        return None if value is None else to_wire(value)

    def get_headers(self) -> Any:
        grouped: dict[bytes, list[bytes]] = {}
        for name, value in self._target():
            grouped.setdefault(to_wire(name.lower()), []).append(to_wire(value))
        conv = self._conv
        return conv.table(
            {k: v[0] if len(v) == 1 else conv.table(array=v) for k, v in grouped.items()}
        )

    def get_status(self) -> int | None:
        binding = self._b
        if binding.head is not None:
            return binding.head.status
        response = binding.ctx.response
        return response.status if response is not None else None

    def set_status(self, status: object = None) -> None:
        self._b.check_phase(_HEADER_PHASES)
        code = int_arg(status, "code", 100, 599)
        if self._b.head is not None:
            self._b.head.status = code
        self._b.ngx_status = code

    def get_source(self) -> bytes:
        return self._b.ctx.response_source.encode()

    def _target(self) -> Headers:
        binding = self._b
        if binding.head is not None:
            return binding.head.headers
        ctx = binding.ctx
        return ctx.response.headers if ctx.response is not None else ctx.response_headers
