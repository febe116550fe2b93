"""JSON for the LLM data path: orjson where it can, the standard library where orjson refuses.

orjson parses and serializes several times faster than `json`, but refuses some input `json`
reads (NaN/Infinity, a lone UTF-16 surrogate escape, a UTF-8 byte-order mark) and some values
`json` writes (integers beyond 64 bits, strings holding lone surrogates). Such documents fall
back to `json`, so what Lockgate accepts is unchanged; its output is valid UTF-8 (NaN is
written as null).

Output is compact (`{"a":1}`) and keeps non-ASCII characters as UTF-8 (no `\\uXXXX` escapes).
One difference remains: orjson reads an integer beyond 64 bits as a float (Kong, whose cjson
reads every number as a double, keeps even less of it).
"""

from __future__ import annotations

import json
from typing import Any

import orjson


def loads(data: bytes | str) -> Any:
    """`data` parsed; ValueError if it is not JSON (or nests deeper than orjson's 1024)."""
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        try:
            return json.loads(data)
        except RecursionError as exc:  # Kong's cjson refuses deep nesting too (1000 levels)
            raise ValueError("JSON nested too deeply") from exc


def object_of(data: bytes | str) -> dict[str, Any] | None:
    """`data` parsed as a JSON object, or None when it is not JSON or not an object."""
    try:
        doc = loads(data)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def dumps(doc: Any) -> bytes:
    """`doc` as compact UTF-8 JSON."""
    try:
        return orjson.dumps(doc)
    except orjson.JSONEncodeError:
        # Lone surrogates are escaped (ASCII output), big integers written in full.
        return json.dumps(doc, separators=(",", ":")).encode()
