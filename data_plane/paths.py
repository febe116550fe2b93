"""Request path normalization and upstream path joining, as Kong's router does them.

`normalize_path` is what routes are matched against (Kong's `kong.tools.uri.normalize` with slash
merging): RFC 3986 §6.2.2 normalization plus `//` merging. `upstream_path` builds the path sent to
the service from the service's `path`, the route's `strip_path`/`path_handling` and what the
route's path matched (`kong/router/utils.lua` for v0, `kong/router/traditional.lua` for v1).
"""

from __future__ import annotations

import re

# RFC 3986 unreserved characters: an escape of one of these is decoded, any other escape is kept
# with its hex digits uppercased so that `%2f` and `%2F` match the same routes.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_ESCAPE_RE = re.compile(r"%([0-9A-Fa-f]{2})")


def _unescape(match: re.Match[str]) -> str:
    char = chr(int(match.group(1), 16))
    return char if char in _UNRESERVED else "%" + match.group(1).upper()


def normalize_path(raw_path: str) -> str:
    """Normalize a request path (no query string) for routing and proxying.

    Decodes `%XX` escapes of unreserved characters, uppercases the hex of every other escape,
    removes `.` and `..` segments (a `..` never climbs above the root) and merges repeated
    slashes. A path ending in `/`, `/.` or `/..` keeps a trailing slash. The result of a path
    that starts with `/` starts with `/`. Idempotent: normalizing twice changes nothing more.
    Examples: `/a/./b/../c` -> `/a/c`, `/%41%2f` -> `/A%2F`, `//x//y` -> `/x/y`.

    Unlike Kong, escapes of characters that are neither reserved nor unreserved (`%20`, UTF-8
    bytes) stay encoded rather than being decoded here and re-escaped when proxying: what the
    upstream receives is the same, and the result is always a valid URI path.
    """
    path = raw_path
    if "%" in path:
        path = _ESCAPE_RE.sub(_unescape, path)
    if "." not in path and "//" not in path:
        return path
    if not path.startswith("/"):
        return path
    out: list[str] = []
    segments = path.split("/")
    last = len(segments) - 1
    trailing = False
    # segments[0] is the empty string before the leading slash.
    for i in range(1, last + 1):
        seg = segments[i]
        if seg == "" or seg == ".":
            trailing = i == last
        elif seg == "..":
            if out:
                out.pop()
            trailing = i == last
        else:
            out.append(seg)
    if not out:
        return "/"
    return "/" + "/".join(out) + ("/" if trailing else "")


def sanitize_postfix(postfix: str) -> str:
    """Drop a leading `./` or `../` (or a bare `.`/`..`) left after stripping a matched prefix."""
    if postfix in (".", ".."):
        return ""
    if postfix.startswith("./"):
        return postfix[2:]
    if postfix.startswith("../"):
        return postfix[3:]
    return postfix


def upstream_path(
    base: str, path: str, postfix: str | None, strip_path: bool, path_handling: str
) -> str:
    """The path to send upstream.

    `base` is the service's path (`/` when it has none); `path` the normalized request path;
    `postfix` what follows the route's matched path (None when the route has no paths, then the
    request path after its leading slash is used). With `strip_path` the matched part is
    replaced by `base`; without it `base` prefixes the whole request path.

    v0 joins as segments (`/s` + `/tv0/req` stripped of `/tv0` -> `/s/req`); v1 treats `base` as
    a plain string prefix (`/s` + `/fv1/req` -> `/sfv1/req`). Both avoid a double slash at the
    join.
    """
    rest = sanitize_postfix(path[1:] if postfix is None else postfix)
    if path_handling == "v1":
        if not strip_path:
            return base + path[1:]
        if base.endswith("/") and rest.startswith("/"):
            return base[:-1] + rest
        return base + rest
    if base.endswith("/"):
        if not strip_path:
            return base + path[1:]
        if rest == "":
            if base == "/" or path.endswith("/"):
                return base
            return base[:-1]
        if rest.startswith("/"):
            return base[:-1] + rest
        return base + rest
    if not strip_path:
        return base if path == "/" else base + path
    if rest == "":
        return base + "/" if len(path) > 1 and path.endswith("/") else base
    if rest.startswith("/"):
        return base + rest
    return base + "/" + rest
