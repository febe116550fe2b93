"""Values across the Lua/Python boundary, and the `cjson` module offered to sandboxed code.

Lua strings are bytes on the Python side (the runtime has no encoding). JSON-shaped Python data
(dict/list/str/int/float/bool/None) becomes Lua tables and back with lua-cjson's rules:
- a table whose keys are all positive integers is an array (holes become null; an excessively
  sparse one is an error), any other non-empty table an object (number keys become strings), an
  empty table `{}`;
- `cjson.null` (also `ngx.null`) is JSON null and `cjson.empty_array` is `[]`;
- integral floats encode as integers (cjson's `%.14g`), NaN/Infinity are errors.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any, Final

import lupa.lua54 as lupa

_MAX_DEPTH = 500  # below Python's recursion limit; cjson allows 1000
_INT64 = (-(2**63), 2**63 - 1)


class _Null:
    """JSON null inside Lua (a userdata, like OpenResty's `ngx.null`)."""

    __slots__ = ()

    def __str__(self) -> str:
        return "userdata: NULL"


class _EmptyArray:
    """`cjson.empty_array`: encodes as `[]`."""

    __slots__ = ()

    def __str__(self) -> str:
        return "userdata: empty_array"


NULL: Final = _Null()
EMPTY_ARRAY: Final = _EmptyArray()


class LuaConversionError(ValueError):
    """A Lua value cannot be represented (e.g. a function in a JSON body)."""


class Converter:
    """Converts values for one runtime (Lua tables belong to the runtime that made them)."""

    __slots__ = ("_runtime",)

    def __init__(self, runtime: Any) -> None:
        self._runtime = runtime

    def table(self, items: dict[Any, Any] | None = None, array: list[Any] | None = None) -> Any:
        """A Lua table from already-converted keys and values (no recursion)."""
        args: list[Any] = []
        if array:
            args.append(array)
        if items:
            args.append(items)
        return self._runtime.table_from(*args)

    def to_lua(self, value: object, depth: int = 0) -> object:
        """JSON-shaped Python data to Lua values; None becomes `cjson.null`."""
        if depth > _MAX_DEPTH:
            raise LuaConversionError("excessive nesting")
        if value is None:
            return NULL
        if isinstance(value, str):
            return value.encode("utf-8", "surrogateescape")
        if isinstance(value, bool | float | bytes):
            return value
        if isinstance(value, int):
            return value if _INT64[0] <= value <= _INT64[1] else float(value)
        if isinstance(value, dict):
            items = {self.to_lua(k, depth + 1): self.to_lua(v, depth + 1) for k, v in value.items()}
            return self._runtime.table_from(items) if items else self._runtime.table()
        if isinstance(value, list | tuple):
            array = [self.to_lua(v, depth + 1) for v in value]
            return self._runtime.table_from(array) if array else self._runtime.table()
        raise LuaConversionError(f"cannot convert {type(value).__name__} to Lua")

    def to_python(self, value: object, strings: str = "replace", depth: int = 0) -> object:
        """Lua values to JSON-shaped Python data (cjson's rules, see module docstring).

        `strings` is the UTF-8 error handler for Lua strings: "replace" for values that must be
        valid text, "surrogateescape" to carry raw bytes through (see `encode_json`).
        """
        if value is None or value is NULL:
            return None
        if value is EMPTY_ARRAY:
            return []
        if isinstance(value, bytes):
            return value.decode("utf-8", strings)
        if isinstance(value, bool | int):
            return value
        if isinstance(value, float):
            if math.isnan(value) or math.isinf(value):
                raise LuaConversionError("Cannot serialise number: must not be NaN or Infinity")
            return int(value) if value.is_integer() and abs(value) < 1e15 else value
        kind = lupa.lua_type(value)
        if kind != "table":
            raise LuaConversionError(f"Cannot serialise {kind}: type not supported")
        if depth >= _MAX_DEPTH:
            raise LuaConversionError(f"Cannot serialise, excessive nesting ({depth + 1})")
        table: Any = value
        items = list(table.items())
        if not items:
            return {}
        if all(isinstance(k, int) and not isinstance(k, bool) and k > 0 for k, _ in items):
            size = max(k for k, _ in items)
            if size > 10 and size > 2 * len(items):
                raise LuaConversionError("Cannot serialise table: excessively sparse array")
            out: list[object] = [None] * size
            for k, v in items:
                out[k - 1] = self.to_python(v, strings, depth + 1)
            return out
        obj: dict[str, object] = {}
        for k, v in items:
            obj[self._key(k, strings)] = self.to_python(v, strings, depth + 1)
        return obj

    @staticmethod
    def _key(key: object, strings: str) -> str:
        if isinstance(key, bytes):
            return key.decode("utf-8", strings)
        if isinstance(key, float) and key.is_integer():
            return str(int(key))
        if isinstance(key, int | float) and not isinstance(key, bool):
            return str(key)
        raise LuaConversionError("Cannot serialise table: table key must be a number or string")

    def encode_json(self, value: object) -> bytes:
        """cjson.encode: compact JSON; raw bytes in Lua strings are passed through."""
        data = self.to_python(value, "surrogateescape")
        text = json.dumps(data, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
        return text.encode("utf-8", "surrogateescape")

    def decode_json(self, data: object) -> object:
        """cjson.decode: any JSON value; null becomes `cjson.null`."""
        if not isinstance(data, bytes):
            raise LuaConversionError(
                f"bad argument #1 to 'decode' (string expected, got {_lua_type_name(data)})"
            )
        try:
            parsed = json.loads(data.decode("utf-8", "surrogateescape"))
        except json.JSONDecodeError as exc:
            raise LuaConversionError(f"{exc.msg} at character {exc.pos + 1}") from None
        return self.to_lua(parsed)

    def cjson_functions(self) -> dict[bytes, Callable[..., Any]]:
        """The Python halves of `cjson` and `cjson.safe` (the Lua side is in pdk.py)."""
        return {
            b"encode": self.encode_json,
            b"decode": self.decode_json,
            b"safe_encode": _safe(self.encode_json),
            b"safe_decode": _safe(self.decode_json),
        }


def _safe(fn: Callable[[object], object]) -> Callable[[object], object]:
    def call(value: object) -> object:
        try:
            return fn(value)
        except (LuaConversionError, RecursionError) as exc:
            return None, str(exc).encode()

    return call


def _lua_type_name(value: object) -> str:
    if value is None:
        return "no value"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    return str(lupa.lua_type(value) or "userdata")
