"""List endpoints' query options as Kong parses them: `size` (default 100, at most 1000),
an opaque `offset`, and `tags` (`a,b`: all of them; `a/b`: any of them; at most 5), and the
page they select, with the `next` link that continues it."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from control_plane.admin.errors import INVALID_OFFSET, INVALID_OPTIONS, INVALID_SIZE, AdminError
from control_plane.store.protocol import Reader, Where
from gateway.entities import Entity

E = TypeVar("E", bound=Entity)

DEFAULT_SIZE = 100
MAX_SIZE = 1000
MAX_TAGS = 5
SCAN_CHUNK = 1000
"""Rows read per query while filtering by tags."""

# Kong's tag bytes: printable ASCII except ',' and '/', and any non-ASCII character.
_TAG = r"[\x20-\x2B\x2D\x2E\x30-\x7E\u0080-\U0010FFFF]+"
_TAGS_ALL = re.compile(rf"^(?:{_TAG}(?:,|$))+$")
_TAGS_ANY = re.compile(rf"^(?:{_TAG}(?:/|$))+$")


@dataclass(frozen=True, slots=True)
class PageQuery:
    size: int
    after: int | None
    tags: tuple[str, ...] = ()
    any_tag: bool = False
    """True for `a/b` (any), False for `a,b` (all)."""
    raw_size: str | None = None
    raw_tags: str | None = None

    def matches(self, entity: Entity) -> bool:
        if not self.tags:
            return True
        have = set(entity.tags or ())
        test = any if self.any_tag else all
        return test(tag in have for tag in self.tags)


def invalid_size(message: str) -> AdminError:
    return AdminError(400, {"code": INVALID_SIZE, "name": "invalid size", "message": message})


def invalid_option(field: str, message: str) -> AdminError:
    return AdminError(
        400,
        {
            "code": INVALID_OPTIONS,
            "name": "invalid options",
            "message": f"invalid option ({field}: {message})",
            "fields": {field: message},
        },
    )


def parse_size(raw: str | None) -> int:
    """`size` as Kong checks it; raises AdminError 400 `invalid size`."""
    if raw is None:
        return DEFAULT_SIZE
    try:
        size = float(raw)
    except ValueError:
        raise invalid_size("size must be a number") from None
    if not size.is_integer() or not 1 <= size <= MAX_SIZE:
        raise invalid_size(f"size must be an integer between 1 and {MAX_SIZE}")
    return int(size)


def encode_offset(cursor: int) -> str:
    return base64.urlsafe_b64encode(str(cursor).encode()).decode()


def decode_offset(raw: str) -> int:
    """The cursor an offset token names; raises AdminError 400 `invalid offset`."""
    try:
        cursor = int(base64.urlsafe_b64decode(raw.encode()).decode())
    except (ValueError, binascii.Error, UnicodeError):
        raise AdminError(
            400,
            {
                "code": INVALID_OFFSET,
                "name": "invalid offset",
                "message": f"'{raw}' is not a valid offset: bad base64 encoding",
            },
        ) from None
    return cursor


def parse_tags(raw: str) -> tuple[tuple[str, ...], bool]:
    """Kong's tag filter syntax; raises AdminError 400 `invalid options`."""
    if _TAGS_ALL.match(raw):
        tags, any_tag = tuple(raw.split(",")), False
    elif _TAGS_ANY.match(raw):
        tags, any_tag = tuple(raw.split("/")), True
    else:
        raise invalid_option("tags", "invalid filter syntax")
    tags = tuple(tag for tag in tags if tag)
    if len(tags) > MAX_TAGS:
        raise invalid_option("tags", f"cannot query more than {MAX_TAGS} tags")
    return tags, any_tag


def parse_page_query(params: Mapping[str, str]) -> PageQuery:
    """Read `size`, `offset` and `tags` from a request's query parameters."""
    raw_size = params.get("size")
    raw_offset = params.get("offset")
    raw_tags = params.get("tags")
    tags, any_tag = parse_tags(raw_tags) if raw_tags is not None else ((), False)
    return PageQuery(
        size=parse_size(raw_size),
        after=None if raw_offset is None else decode_offset(raw_offset),
        tags=tags,
        any_tag=any_tag,
        raw_size=raw_size,
        raw_tags=raw_tags,
    )


def fetch_page(
    reader: Reader, model: type[E], where: Where | None, query: PageQuery
) -> tuple[list[E], int | None]:
    """The page `query` selects and the cursor after it (None on the last page).

    Without tags this is one store query. With tags, rows are scanned in chunks and filtered;
    when a page fills mid-chunk, one more query finds the exact cursor after its last row.
    """
    if not query.tags:
        return reader.page(model, where, query.after, query.size)
    found: list[E] = []
    after = query.after
    while True:
        chunk, cursor = reader.page(model, where, after, SCAN_CHUNK)
        for index, entity in enumerate(chunk):
            if not query.matches(entity):
                continue
            found.append(entity)
            if len(found) == query.size:
                if index == len(chunk) - 1:
                    return found, cursor
                _, exact = reader.page(model, where, after, index + 1)
                return found, exact
        if cursor is None:
            return found, None
        after = cursor


def page_body(path: str, query: PageQuery, items: list[Any], cursor: int | None) -> dict[str, Any]:
    """Kong's list body: `data`, `next` (a path continuing the listing) and `offset`."""
    body: dict[str, Any] = {"data": items, "next": None}
    if cursor is not None:
        token = encode_offset(cursor)
        link = f"{path}?offset={quote(token, safe='')}"
        if query.raw_tags is not None:
            link += f"&tags={quote(query.raw_tags, safe='')}"
        if query.raw_size is not None:
            link += f"&size={quote(query.raw_size, safe='')}"
        body["offset"] = token
        body["next"] = link
    return body
