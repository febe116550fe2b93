"""Versioned schema migrations (Alembic), run by `open_store` on every start.

Revisions live in `versions/` (`0001` the walking skeleton's schema, `0002` admin tokens and the
audit log, `0003` analytics minutes, `0004` web UI users and sessions); Alembic records the
applied one in `alembic_version`. `upgrade` brings a database to
`HEAD` in one transaction, under a lock so control planes starting together on one PostgreSQL do
not race (SQLite: the write lock). A database from before migrations existed (entity tables but
no `alembic_version`) is taken to be at `0001`. A database at a revision this code does not know
(written by a newer Lockgate) is refused with `SchemaTooNewError`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect, text

log = logging.getLogger("lockgate.cp.store")

HEAD = "0004"
"""The newest revision this code ships (kept in step with `versions/` by a test)."""

_SCRIPT_LOCATION = Path(__file__).resolve().parent
# Any fixed number: the key of the PostgreSQL advisory lock taken while migrating.
_PG_LOCK_KEY = 7_401_126_001


class SchemaTooNewError(RuntimeError):
    """The database was migrated by a newer Lockgate than this one."""


def _config(conn: Connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(_SCRIPT_LOCATION))
    config.attributes["connection"] = conn
    return config


def current(conn: Connection) -> str | None:
    """The revision the database is at (None: not migrated yet)."""
    return MigrationContext.configure(conn).get_current_revision()


def known_revisions() -> list[str]:
    """Every revision this code ships, oldest first."""
    script = ScriptDirectory(str(_SCRIPT_LOCATION))
    return [s.revision for s in reversed(list(script.walk_revisions()))]


def upgrade(conn: Connection, target: str = "head") -> None:
    """Migrate the database on `conn` to `target` (default: the newest revision).

    `conn` must be inside a transaction (the caller commits); on SQLite it should be a write
    transaction (BEGIN IMMEDIATE) so concurrent starts queue.
    """
    if conn.dialect.name == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK_KEY})
    config = _config(conn)
    at = current(conn)
    if at is not None and at not in known_revisions():
        raise SchemaTooNewError(
            f"the database schema is at revision {at}, newer than this Lockgate knows "
            f"(up to {HEAD}): upgrade Lockgate, or point it at another database"
        )
    if at is None and inspect(conn).has_table("lockgate_revision"):
        command.stamp(config, "0001")  # created by the walking skeleton, before migrations
        at = "0001"
    command.upgrade(config, target)
    now = current(conn)
    if now != at:
        log.info("migrated the database schema from %s to %s", at or "empty", now)
