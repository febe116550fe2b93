"""Key-auth credential reads for the data planes: one lookup, or all of them in batches.

Both join the credential to its consumer in one query and skip expired credentials
(`expires_at <= now`), so a data plane never receives a key that no longer works.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, Select, or_, select

from control_plane.store import tables
from gateway.context import ConsumerInfo, CredentialInfo
from gateway.credentials import CredentialMatch


def _query(now: float) -> Select[Any]:
    cred, consumer = tables.keyauth_credentials, tables.consumers
    return (
        select(
            cred.c.seq,
            cred.c.id,
            cred.c.key_hash,
            cred.c.expires_at,
            consumer.c.id.label("consumer_id"),
            consumer.c.username,
            consumer.c.custom_id,
        )
        .join(consumer, consumer.c.id == cred.c.consumer_id)
        .where(or_(cred.c.expires_at.is_(None), cred.c.expires_at > now))
    )


def _match(row: Any) -> CredentialMatch:
    return CredentialMatch(
        credential=CredentialInfo(id=row.id, consumer_id=row.consumer_id),
        consumer=ConsumerInfo(id=row.consumer_id, username=row.username, custom_id=row.custom_id),
        expires_at=None if row.expires_at is None else float(row.expires_at),
    )


def lookup(conn: Connection, key_hash: str, now: float) -> CredentialMatch | None:
    """The unexpired credential with this key hash and its consumer, or None."""
    row = conn.execute(_query(now).where(tables.keyauth_credentials.c.key_hash == key_hash)).first()
    return None if row is None else _match(row)


def batch(
    conn: Connection, after: int | None, limit: int, now: float
) -> tuple[list[tuple[str, CredentialMatch]], int | None]:
    """Up to `limit` unexpired credentials after cursor `after` (insertion order), and the
    cursor for the next batch (None when this was the last)."""
    seq = tables.keyauth_credentials.c.seq
    query = _query(now).order_by(seq).limit(limit)
    if after is not None:
        query = query.where(seq > after)
    rows = list(conn.execute(query))
    found = [(str(row.key_hash), _match(row)) for row in rows]
    return found, (rows[-1].seq if len(rows) == limit else None)
