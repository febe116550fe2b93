"""What each admin role may do, decided from the method, path and query alone (before routing).

- admin: everything.
- editor: reads and every entity write (including `POST /config`); no admin-token management
  and no audit log.
- viewer: reads only, and the calls that write nothing: the schema `validate` endpoints and
  `POST /config?dry_run=true` (a decK diff). The unsanitized export `GET /config` shows provider
  keys and key hashes, so a viewer may only call it with `sanitize=true`.

A query flag counts as set only when every occurrence of it is one of `TRUE_VALUES`: whichever
occurrence the endpoint reads, it then sees the flag set (`?dry_run=true&dry_run=false` is not
a dry run for this check).
"""

from __future__ import annotations

from urllib.parse import parse_qsl

from control_plane.admin.caller import Role

TRUE_VALUES = frozenset({"1", "true", "yes"})
"""Query values that turn a boolean flag on (compared lowercased), as `/config` reads them."""

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_ADMIN_ONLY_PREFIXES = ("/admin-tokens", "/audit-logs")
_CONFIG = "/config"


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _is_validation(path: str) -> bool:
    """`/schemas/plugins/validate`, `/schemas/{entity}/validate`: checks that write nothing."""
    parts = path.strip("/").split("/")
    return len(parts) == 3 and parts[0] == "schemas" and parts[2] == "validate"


def flag_set(query: bytes | str, name: str) -> bool:
    """Whether the raw query string sets boolean flag `name` (every occurrence true)."""
    text = query.decode("latin-1") if isinstance(query, bytes) else query
    values = [value for key, value in parse_qsl(text, keep_blank_values=True) if key == name]
    return bool(values) and all(value.lower() in TRUE_VALUES for value in values)


def denial(role: Role, method: str, path: str, query: bytes | str = b"") -> str | None:
    """The 403 message for `role` calling `method path?query`, or None when it is allowed.

    `query` is the raw query string (the ASGI scope's `query_string`)."""
    if role == "admin":
        return None
    verb = method.upper()
    if any(_under(path, prefix) for prefix in _ADMIN_ONLY_PREFIXES):
        return f"Forbidden: role '{role}' cannot {method} {path} (admin role only)"
    if role == "editor":
        return None
    if path == _CONFIG:
        return _viewer_config(role, method, verb, query)
    if verb in _READ_METHODS:
        return None
    if verb == "POST" and _is_validation(path):
        return None
    return f"Forbidden: role '{role}' cannot {method} {path} (read-only role)"


def _viewer_config(role: Role, method: str, verb: str, query: bytes | str) -> str | None:
    if verb in ("GET", "HEAD"):
        if flag_set(query, "sanitize"):
            return None
        return (
            f"Forbidden: role '{role}' cannot {method} {_CONFIG} without sanitize=true "
            "(secrets: admin and editor roles only)"
        )
    if verb == "OPTIONS" or (verb == "POST" and flag_set(query, "dry_run")):
        return None
    return f"Forbidden: role '{role}' cannot {method} {_CONFIG} (read-only role)"
