"""What each admin role may do, decided from the method and path alone (before routing).

- admin: everything.
- editor: reads and every entity write (including `POST /config`); no admin-token management
  and no audit log.
- viewer: reads only (and the schema `validate` endpoints, which write nothing).
"""

from __future__ import annotations

from control_plane.admin.caller import Role

_READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
_ADMIN_ONLY_PREFIXES = ("/admin-tokens", "/audit-logs")


def _under(path: str, prefix: str) -> bool:
    return path == prefix or path.startswith(prefix + "/")


def _is_validation(path: str) -> bool:
    """`/schemas/plugins/validate`, `/schemas/{entity}/validate`: checks that write nothing."""
    parts = path.strip("/").split("/")
    return len(parts) == 3 and parts[0] == "schemas" and parts[2] == "validate"


def denial(role: Role, method: str, path: str) -> str | None:
    """The 403 message for `role` calling `method path`, or None when it is allowed."""
    if role == "admin":
        return None
    if any(_under(path, prefix) for prefix in _ADMIN_ONLY_PREFIXES):
        return f"Forbidden: role '{role}' cannot {method} {path} (admin role only)"
    if method.upper() in _READ_METHODS or role == "editor":
        return None
    if method.upper() == "POST" and _is_validation(path):
        return None
    return f"Forbidden: role '{role}' cannot {method} {path} (read-only role)"
