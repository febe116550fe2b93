"""The first UI login: created on first start when there is no user yet."""

from __future__ import annotations

import secrets

from control_plane.store.errors import UniqueViolation
from control_plane.store.users import UserStore

FIRST_ADMIN = "admin"


def ensure_first_admin(
    users: UserStore, password: str | None = None, username: str = FIRST_ADMIN
) -> str | None:
    """Create the admin user `username` when the store has no user at all.

    With `password` (LOCKGATE_ADMIN_PASSWORD) that password is used and None returned; without
    one a random password is generated and returned, for the caller to print once. None too
    when users exist already (or another control plane created the first one meanwhile).
    Blocking: call it off the event loop.
    """
    if users.count() > 0:
        return None
    generated = None if password else secrets.token_urlsafe(18)
    try:
        users.create(username, password or str(generated), "admin", actor="bootstrap")
    except UniqueViolation:  # a control plane sharing the database won the race
        return None
    return generated
