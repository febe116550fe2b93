"""The request a sandbox's PDK is bound to, and argument helpers shared by the PDK modules.

The Lua runtime and its `kong`/`ngx` tables are built once per compiled plugin instance; what
changes per call is only this `Binding` (a handful of attribute writes), so binding a request costs
nothing measurable. Calls never interleave: a phase runs synchronously from `bind` to `unbind`.

HTTP text (header names and values, paths, queries) crosses into Lua as its wire bytes: str values
are latin-1 encoded (what an ASGI-style server decodes them with), bytes from Lua are decoded the
same way, so any byte sequence round-trips unchanged.
"""

from __future__ import annotations

from typing import Any

import lupa.lua54 as lupa

from gateway.context import Exit, RequestContext, ResponseHead

REWRITE_ACCESS = ("rewrite", "access")


Carry = tuple[int, list[bytes], int]
"""Bytes charged, `ngx.say` output and `ngx.status` of a phase in progress (`Binding.carry`)."""


class PdkError(Exception):
    """A PDK function was misused; becomes a Lua error (and Kong's 500 if uncaught)."""


class Binding:
    """Mutable per-call state: the bound request, the phase, and what the chunk produced."""

    __slots__ = (
        "_budget",
        "_ctx",
        "_spent",
        "body_chunk",
        "body_eof",
        "exit",
        "head",
        "ngx_output",
        "ngx_status",
        "phase",
    )

    def __init__(self, write_budget: int) -> None:
        self._budget = write_budget
        self._spent = 0
        self._ctx: RequestContext | None = None
        self.phase = ""
        self.head: ResponseHead | None = None
        self.exit: Exit | None = None
        self.ngx_status = 0
        self.ngx_output: list[bytes] = []
        self.body_chunk = b""
        self.body_eof = False

    def bind(self, ctx: RequestContext, phase: str, head: ResponseHead | None = None) -> None:
        self._ctx = ctx
        self.phase = phase
        self.head = head
        self.exit = None
        self._spent = 0
        self.ngx_status = head.status if head is not None else 0
        if self.ngx_output:
            self.ngx_output = []

    def unbind(self) -> None:
        self._ctx = None
        self.head = None

    def carry(self) -> Carry:
        """What the phase's chunks so far left behind, to finish the phase in another call."""
        return (self._spent, self.ngx_output, self.ngx_status)

    def resume(self, carried: Carry) -> None:
        """After `bind`: continue from what `carry` returned (before any exit was made)."""
        self._spent, self.ngx_output, self.ngx_status = carried

    @property
    def ctx(self) -> RequestContext:
        ctx = self._ctx
        if ctx is None:
            raise PdkError("no request is bound (PDK used outside a phase)")
        return ctx

    def charge(self, size: int) -> None:
        """Account for data a call stores on the Python side (headers, bodies, output, ctx).

        The Lua memory cap doesn't see these copies; without a budget a loop could grow Python
        memory until the CPU limit stops it.
        """
        self._spent += size
        if self._spent > self._budget:
            raise PdkError("data written through the PDK exceeds the sandbox memory limit")

    def charge_texts(self, texts: list[str]) -> None:
        self.charge(sum(len(t) + 32 for t in texts))

    def check_phase(self, allowed: tuple[str, ...]) -> None:
        if self.phase not in allowed:
            raise PdkError(f"function cannot be called in {self.phase} phase")


def to_wire(text: str) -> bytes:
    """A header/URL str as the bytes Lua sees (latin-1; UTF-8 if it has wider characters)."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8")


def from_wire(value: bytes) -> str:
    return value.decode("latin-1")


def lua_number_text(value: int | float) -> str:
    """A number as Kong's LuaJIT writes it (`%.14g`): 10/2 is "5", not Lua 5.4's "5.0"."""
    if isinstance(value, float):
        return f"{value:.14g}"
    return str(value)


def text_arg(value: object, what: str) -> str:
    """A string argument (numbers accepted, as Lua coerces them); anything else is an error."""
    if isinstance(value, bytes):
        return from_wire(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        return lua_number_text(value)
    raise PdkError(f"{what} must be a string")


def opt_text_arg(value: object, what: str) -> str | None:
    return None if value is None else text_arg(value, what)


def int_arg(value: object, what: str, low: int, high: int) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise PdkError(f"{what} must be an integer between {low} and {high}")
    return value


_BAD_NAME_CHARS = frozenset("\r\n:")


def header_name_arg(value: object) -> str:
    name = text_arg(value, "header name")
    if not name or not _BAD_NAME_CHARS.isdisjoint(name):
        raise PdkError(f"invalid header name {name!r}")
    return name


def header_value_text(value: object, name: str) -> str:
    """One header value: string, number or boolean (Kong's accepted scalar types)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, bytes | int | float):
        text = text_arg(value, "header value")
    else:
        raise PdkError(
            f'invalid header value for "{name}": got {type_name(value)}, '
            "expected array of string, string, number or boolean"
        )
    if "\r" in text or "\n" in text:
        raise PdkError(f'invalid header value for "{name}": contains a line break')
    return text


def header_values(value: object, name: str) -> list[str]:
    """A header value or an array of them (set_header with a table sets every element)."""
    if not isinstance(value, bytes | str | int | float) and lupa.lua_type(value) == "table":
        return [header_value_text(v, name) for v in lua_array(value)]
    return [header_value_text(value, name)]


def lua_items(table: object) -> list[tuple[object, object]]:
    """The (key, value) pairs of a Lua table."""
    items: Any = table
    return list(items.items())


def lua_array(table: object) -> list[object]:
    """The sequence part of a Lua table (t[1], t[2], ... up to the first nil)."""
    out: list[object] = []
    index = 1
    while (item := table[index]) is not None:  # type: ignore[index]
        out.append(item)
        index += 1
    return out


def type_name(value: object) -> str:
    """The Lua type name of a value received from Lua."""
    if value is None:
        return "nil"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, bytes):
        return "string"
    return str(lupa.lua_type(value) or "userdata")
