"""Where key-auth finds a key, and how it hides it: headers, query string and request body.

Each lookup answers what Kong's `headers[name]`, `query[name]` and `body[name]` would hold, as a
`KeyValue`:

- `None`: the name is absent (the next location is searched);
- a `str`: one value, possibly empty (it wins, even when empty);
- `DUPLICATE`: several values (Kong sees a Lua table: "Duplicate API key found");
- `NOT_A_STRING`: present but not a string (`?apikey` with no `=`, a JSON number, boolean or
  null): the name is skipped and the search goes on with the next key name.

Header names match case-insensitively with `_` and `-` equivalent, in both directions: nginx
drops client headers with underscores, so in Kong `api_key` can only ever match `api-key`; this
server keeps them, and treating both spellings as one name keeps lookup and removal consistent
(whatever header a key was read from is the one removed).

Bodies follow `kong.request.get_body`: the content type is chosen by substring, form first, then
multipart, then JSON; anything else, or a body that does not parse, is Kong's "EMPTY" (None here).
Removing a field keeps the rest of a form or multipart body byte for byte; JSON is re-encoded.
"""

from __future__ import annotations

import json
import re
from typing import Final, Protocol
from urllib.parse import unquote_plus

from gateway.headers import Headers


class Marker:
    """A non-string lookup outcome (see the module doc)."""

    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


DUPLICATE: Final = Marker("DUPLICATE")
NOT_A_STRING: Final = Marker("NOT_A_STRING")

KeyValue = str | Marker | None


def normalize_header_name(name: str) -> str:
    """The form header names are compared in: lower case, `_` read as `-`."""
    return name.lower().replace("_", "-")


def header_value(headers: Headers, normalized: str) -> KeyValue:
    """The value of the header whose normalized name is `normalized`."""
    keys = headers.lower_names()
    if "_" not in "".join(keys):
        # the usual case, no name spelled with `_`: lower-cased names compare as they are
        count = keys.count(normalized)
        if count > 1:
            return DUPLICATE
        return headers.get(normalized) if count else None
    found: str | None = None
    for key, (_, value) in zip(keys, headers.items(), strict=True):
        if key.replace("_", "-") == normalized:
            if found is not None:
                return DUPLICATE
            found = value
    return found


def remove_headers(headers: Headers, normalized: frozenset[str]) -> None:
    """Remove every header whose normalized name is in `normalized` (all spellings, all values)."""
    keys = headers.lower_names()
    if "_" in "".join(keys):
        headers.remove_lowered({key for key in keys if key.replace("_", "-") in normalized})
    else:
        headers.remove_lowered(normalized)  # normalized names are lower-cased already


def _arg_name(segment: str) -> str:
    eq = segment.find("=")
    return unquote_plus(segment if eq < 0 else segment[:eq], errors="surrogateescape")


def arg_value(text: str, name: str) -> KeyValue:
    """`name` in an `a=1&b=2` string (a URL query or a form body), decoded as nginx does.

    `+` is a space and `%XX` escapes are decoded in names and values; a bare `name` is present
    but not a string; an empty name (`=x`) is ignored. Invalid UTF-8 survives as surrogate
    escapes, so such a key can be refused rather than confused with another.
    """
    if name not in text and "%" not in text:
        return None  # cheap exit: config names are plain ASCII, so an absent name can't match
    found: KeyValue = None
    for segment in text.split("&"):
        if not segment or _arg_name(segment) != name:
            continue
        if found is not None:
            return DUPLICATE
        eq = segment.find("=")
        found = (
            NOT_A_STRING if eq < 0 else unquote_plus(segment[eq + 1 :], errors="surrogateescape")
        )
    return found


def without_arg(text: str, name: str) -> str:
    """`text` with every `name` argument removed; other arguments are kept verbatim, in order."""
    if name not in text and "%" not in text:
        return text
    kept = [s for s in text.split("&") if not s or _arg_name(s) != name]
    return "&".join(kept)


class ParsedBody(Protocol):
    def value(self, name: str) -> KeyValue:
        """`body[name]` as Kong sees it."""
        ...

    def without(self, name: str) -> bytes | None:
        """The body re-encoded without `name`, or None if `name` is not in it."""
        ...


def parse_body(content_type: str | None, body: bytes) -> ParsedBody | None:
    """The body's fields, or None when Kong's get_body would fail (type unsupported, bad body)."""
    if not content_type:
        return None
    lowered = content_type.lower()
    if "application/x-www-form-urlencoded" in lowered:
        return _FormBody(body.decode("utf-8", "surrogateescape"))
    if "multipart/form-data" in lowered:
        boundary = _boundary(content_type)
        return None if boundary is None else _MultipartBody(body, boundary)
    if "application/json" in lowered:
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return None
        # Kong requires a table: an object, or an array (which never holds a named field)
        return _JsonBody(doc) if isinstance(doc, dict | list) else None
    return None


class _FormBody:
    __slots__ = ("_text",)

    def __init__(self, text: str) -> None:
        self._text = text

    def value(self, name: str) -> KeyValue:
        return arg_value(self._text, name)

    def without(self, name: str) -> bytes | None:
        if arg_value(self._text, name) is None:
            return None
        return without_arg(self._text, name).encode("utf-8", "surrogateescape")


class _JsonBody:
    __slots__ = ("_doc",)

    def __init__(self, doc: dict[str, object] | list[object]) -> None:
        self._doc = doc

    def value(self, name: str) -> KeyValue:
        if not isinstance(self._doc, dict) or name not in self._doc:
            return None
        found = self._doc[name]
        if isinstance(found, str):
            return found
        # arrays and objects are Lua tables in Kong: both read as a duplicate key
        return DUPLICATE if isinstance(found, list | dict) else NOT_A_STRING

    def without(self, name: str) -> bytes | None:
        if not isinstance(self._doc, dict) or name not in self._doc:
            return None
        rest = {k: v for k, v in self._doc.items() if k != name}
        text = json.dumps(rest, separators=(",", ":"), ensure_ascii=False)
        try:
            return text.encode()
        except UnicodeEncodeError:  # a lone surrogate from a `\ud800` escape: keep it escaped
            return json.dumps(rest, separators=(",", ":")).encode()


_BOUNDARY_RE = re.compile(r';\s*boundary\s*=\s*(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)
_PART_NAME_RE = re.compile(
    rb'(?:^|;)\s*name\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]*))', re.IGNORECASE
)


def _boundary(content_type: str) -> bytes | None:
    match = _BOUNDARY_RE.search(content_type)
    if match is None:
        return None
    return (match.group(1) or match.group(2)).encode("latin-1", "replace")


class _MultipartBody:
    """multipart/form-data split on its delimiter lines; parts keep their exact bytes.

    Splitting on `CRLF--boundary` and joining back is lossless, so dropping a part's segment
    removes exactly that part. Every named part counts, file parts included, as in Kong.
    """

    __slots__ = ("_delimiter", "_names", "_segments", "_values")

    def __init__(self, body: bytes, boundary: bytes) -> None:
        self._delimiter = b"\r\n--" + boundary
        # a virtual CRLF lets the first delimiter line match like the others
        self._segments = _delimited(b"\r\n" + body, self._delimiter)
        self._names: list[str | None] = [None]  # the preamble has no name
        self._values: dict[str, list[str]] = {}
        for segment in self._segments[1:]:
            name, content = _part(segment)
            self._names.append(name)
            if name is not None:
                text = content.decode("utf-8", "surrogateescape")
                self._values.setdefault(name, []).append(text)

    def value(self, name: str) -> KeyValue:
        values = self._values.get(name)
        if values is None:
            return None
        return values[0] if len(values) == 1 else DUPLICATE

    def without(self, name: str) -> bytes | None:
        if name not in self._values:
            return None
        kept = [seg for seg, n in zip(self._segments, self._names, strict=True) if n != name]
        return self._delimiter.join(kept)[2:]


def _delimited(data: bytes, delimiter: bytes) -> list[bytes]:
    """`data` split on delimiter lines: the delimiter followed by `--`, or by optional
    whitespace and CRLF (RFC 2046). A delimiter-like run inside content stays content."""
    pieces = data.split(delimiter)
    segments = pieces[:1]
    for piece in pieces[1:]:
        if piece.startswith(b"--") or piece.lstrip(b" \t").startswith(b"\r\n"):
            segments.append(piece)
        else:
            segments[-1] += delimiter + piece
    return segments


def _part(segment: bytes) -> tuple[str | None, bytes]:
    """(form field name, content) of one part segment; (None, b"") for the closing one."""
    if segment.startswith(b"--"):
        return None, b""  # the close delimiter `--boundary--` and the epilogue
    line_end = segment.find(b"\r\n")
    if line_end < 0:
        return None, b""
    rest = segment[line_end + 2 :]
    if rest.startswith(b"\r\n"):
        return None, rest[2:]  # no headers, so no name
    head_end = rest.find(b"\r\n\r\n")
    if head_end < 0:
        return None, b""
    name: str | None = None
    for line in rest[:head_end].split(b"\r\n"):
        field, _, params = line.partition(b":")
        if field.strip().lower() == b"content-disposition":
            match = _PART_NAME_RE.search(params)
            if match is not None:
                raw = match.group(1) if match.group(1) is not None else match.group(2)
                name = raw.decode("utf-8", "surrogateescape")
    return name, rest[head_end + 4 :]
