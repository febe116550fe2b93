"""Request bodies as Kong's Admin API accepts them: JSON, or form-urlencoded (curl -d)."""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request

from control_plane.admin.errors import bad_request

_INDEXED = re.compile(r"^(.*)\[(\d*)\]$")


async def read_body(request: Request) -> dict[str, Any]:
    """The body as a dict; `{}` when empty. Raises AdminError 400 `Cannot parse JSON body`."""
    raw = await request.body()
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type == "application/x-www-form-urlencoded":
        return parse_form(raw.decode("utf-8", "replace"))
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise bad_request("Cannot parse JSON body") from None
    if not isinstance(value, dict):
        raise bad_request("Cannot parse JSON body")
    try:
        # `\ud800` escapes decode to lone surrogates, which no database column can store.
        json.dumps(value, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise bad_request("Cannot parse JSON body") from None
    return value


def parse_form(text: str) -> dict[str, Any]:
    """Kong's form conventions: `config.key_names` nests, `paths[]` (or `paths[1]`) and repeated
    keys make arrays. Values stay strings; the schema coerces numbers and booleans."""
    out: dict[str, Any] = {}
    for key, value in parse_qsl(text, keep_blank_values=True):
        match = _INDEXED.match(key)
        is_list = match is not None
        path = (match.group(1) if match else key).split(".")
        node = out
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise bad_request(f"invalid form field '{key}'")
            node = child
        leaf = path[-1]
        if is_list or leaf in node:
            existing = node.get(leaf)
            items = (
                existing if isinstance(existing, list) else ([] if existing is None else [existing])
            )
            node[leaf] = [*items, value]
        else:
            node[leaf] = value
    return out
