"""Control-plane storage: the `Store` protocol and its SQL implementation.

`open_store("sqlite:///lockgate.db")` or `open_store("postgresql://...")` opens a store and
migrates its schema to the newest version.
"""

from control_plane.store import analytics_tables as _analytics_tables  # noqa: F401 (registers)
from control_plane.store import users_tables as _users_tables  # noqa: F401 (registers tables)
from control_plane.store.events import ChangeEvent
from control_plane.store.migrations import SchemaTooNewError
from control_plane.store.protocol import (
    ROLES,
    AdminToken,
    AuditEntry,
    Reader,
    Role,
    Store,
    Writer,
)
from control_plane.store.sql import SqlStore, open_store

__all__ = [
    "ROLES",
    "AdminToken",
    "AuditEntry",
    "ChangeEvent",
    "Reader",
    "Role",
    "SchemaTooNewError",
    "SqlStore",
    "Store",
    "Writer",
    "open_store",
]
