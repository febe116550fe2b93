"""The admin token table. Each function runs on a connection inside the caller's transaction.

Tokens are not config: changing them never moves the revision. Creating and revoking one is
audited (entity "admin_tokens", the hash redacted); marking one used is not.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict
from typing import Any, cast

from sqlalchemy import Connection, delete, insert, or_, select, update

from control_plane.store import tables
from control_plane.store.errors import UniqueViolation
from control_plane.store.protocol import ROLES, AdminToken, Role
from control_plane.store.redact import REDACTED
from control_plane.store.sql_audit import PendingEntry, pending

ENTITY = "admin_tokens"


def _token(row: Any) -> AdminToken:
    return AdminToken(
        id=row.id,
        name=row.name,
        role=cast(Role, row.role),
        token_hash=row.token_hash,
        created_at=int(row.created_at),
        last_used_at=None if row.last_used_at is None else int(row.last_used_at),
        expires_at=None if row.expires_at is None else int(row.expires_at),
    )


def create(
    conn: Connection, name: str, role: str, token_hash: str, expires_at: int | None
) -> tuple[AdminToken, PendingEntry]:
    """Insert a token; return it and its audit entry. UniqueViolation on a taken name/hash."""
    if role not in ROLES:
        raise ValueError(f"invalid role {role!r}: expected one of {', '.join(ROLES)}")
    table = tables.admin_tokens
    for column, value in (("name", name), ("token_hash", token_hash)):
        if conn.scalar(select(table.c.id).where(table.c[column] == value)) is not None:
            raise UniqueViolation({column: _shown(column, value)})
    token = AdminToken(
        id=str(uuid.uuid4()),
        name=name,
        role=role,
        token_hash=token_hash,
        created_at=int(time.time()),
        last_used_at=None,
        expires_at=expires_at,
    )
    conn.execute(insert(table).values(**asdict(token)))
    return token, pending(ENTITY, None, asdict(token), token.id, token.name)


def _shown(column: str, value: str) -> str:
    """Never echo a token hash back, even in an error."""
    return REDACTED if column == "token_hash" else value


def list_all(conn: Connection) -> list[AdminToken]:
    table = tables.admin_tokens
    return [_token(row) for row in conn.execute(select(table).order_by(table.c.seq))]


def find(conn: Connection, token_hash: str, now: float) -> AdminToken | None:
    """The unexpired token with this hash, or None."""
    table = tables.admin_tokens
    row = conn.execute(select(table).where(table.c.token_hash == token_hash)).first()
    if row is None or (row.expires_at is not None and row.expires_at <= now):
        return None
    return _token(row)


def touch(conn: Connection, token_id: str, now: float) -> None:
    table = tables.admin_tokens
    conn.execute(update(table).where(table.c.id == token_id).values(last_used_at=int(now)))


def revoke(conn: Connection, id_or_name: str) -> PendingEntry | None:
    """Delete the token with this id (preferred) or name; its audit entry, or None if none."""
    table = tables.admin_tokens
    rows = list(
        conn.execute(select(table).where(or_(table.c.id == id_or_name, table.c.name == id_or_name)))
    )
    if not rows:
        return None
    # A name may look like another token's id: the id wins, as in Kong's `{id or name}` routes.
    row = next((r for r in rows if r.id == id_or_name), rows[0])
    conn.execute(delete(table).where(table.c.id == row.id))
    token = _token(row)
    return pending(ENTITY, asdict(token), None, token.id, token.name)
