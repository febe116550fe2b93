"""Alembic environment for Lockgate's store: online only, on the caller's connection.

`control_plane.store.migrations.upgrade` passes an open connection (already inside the
transaction that holds the migration lock) in `config.attributes["connection"]`; every
migration runs inside that one transaction, so a failed upgrade leaves the database as it was.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "Lockgate migrations run through control_plane.store.open_store (they need a connection)"
    )
context.configure(connection=connection, transactional_ddl=True)
with context.begin_transaction():
    context.run_migrations()
