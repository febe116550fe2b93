"""Who is making the current Admin API request: set by the auth middleware, read by writes.

The middleware resolves the admin token to a `Caller` and binds it in a context variable for
the rest of the request; `AdminContext.write` reads it to pass `actor` and `request_id` to the
store, so every endpoint's writes (including ones mounted by other modules) are attributed.
"""

from __future__ import annotations

from contextvars import ContextVar
from dataclasses import dataclass

from control_plane.store.protocol import ROLES, Role

__all__ = [
    "BOOTSTRAP_NAME",
    "ROLES",
    "Caller",
    "Role",
    "bind_caller",
    "current_caller",
    "unbind_caller",
]

BOOTSTRAP_NAME = "bootstrap"
"""The actor name of the bootstrap token (LOCKGATE_ADMIN_TOKEN or the one printed at start)."""


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated request's identity: the token's name, its role and the request id."""

    name: str
    role: Role
    request_id: str


_CURRENT: ContextVar[Caller | None] = ContextVar("lockgate_admin_caller", default=None)


def current_caller() -> Caller | None:
    """The caller of the request being handled, or None outside the auth middleware."""
    return _CURRENT.get()


def bind_caller(caller: Caller) -> object:
    """Make `caller` current; returns the token for `unbind_caller`."""
    return _CURRENT.set(caller)


def unbind_caller(token: object) -> None:
    _CURRENT.reset(token)  # type: ignore[arg-type]
