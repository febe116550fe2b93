"""The audit log table: building entries (redacted), writing them, listing and pruning.

Entries of one write transaction go through an `AuditBatch`, which inserts them in batches of
`BATCH` as they accumulate and the rest just before the transaction commits: a failed write
leaves no entry (the inserts roll back with it), a bulk sync costs one round trip per batch,
and a sync of 200k entities never holds more than one batch of diffs in memory. Every entry of
one transaction carries the time the transaction started.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import Connection, delete, insert, select
from sqlalchemy.sql.elements import ColumnElement

from control_plane.store import tables
from control_plane.store.protocol import Action, AuditEntry
from control_plane.store.redact import REDACTED, has_secrets, hash_field, redact
from gateway.entities import Consumer, Entity, Plugin, Route, Service

MAX_PAGE = 1000
BATCH = 1000
"""Pending entries per insert: bounds the memory of a bulk write's audit trail."""


@dataclass(frozen=True, slots=True)
class PendingEntry:
    """An audit entry waiting for its transaction to commit (who/when are added then)."""

    action: Action
    entity: str
    entity_id: str | None
    entity_name: str | None
    diff: str


def entity_name(entity: Entity) -> str | None:
    """The human name of an entity for the log: its name, username, or plugin instance."""
    if isinstance(entity, Service | Route):
        return entity.name
    if isinstance(entity, Consumer):
        return entity.username or entity.custom_id
    if isinstance(entity, Plugin):
        return entity.instance_name or entity.name
    return None


def pending(
    table: str,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    entity_id: str | None,
    name: str | None,
) -> PendingEntry:
    """An entry for a change of one row of `table` from `before` to `after` (None: absent)."""
    action: Action = "create" if before is None else "delete" if after is None else "update"
    diff = {"before": redact(table, before), "after": redact(table, after)}
    return PendingEntry(action, table, entity_id, name, json.dumps(diff, separators=(",", ":")))


def entity_change(table: str, old: Entity | None, new: Entity | None) -> PendingEntry:
    """The entry for an entity insert (old None), update, or delete (new None)."""
    either = cast(Entity, new or old)
    return pending(
        table,
        None if old is None else old.model_dump(mode="json"),
        None if new is None else new.model_dump(mode="json"),
        either.id,
        entity_name(either),
    )


def created(table: str, entity: Entity, data: str) -> PendingEntry:
    """The entry for inserting `entity`, whose JSON (`model_dump_json`) is `data`: the same
    diff as `entity_change(table, None, entity)`, built from `data` where no field is secret
    (a bulk insert of 100k entities would otherwise serialize each one twice)."""
    field = hash_field(table)
    if not has_secrets(table):
        after = data
    elif field is not None and getattr(entity, field, None) is not None:
        # The hash is such a table's only secret: serialize without it, put the mask instead.
        rest = entity.model_dump_json(exclude={field})
        after = f'{{"{field}":{json.dumps(REDACTED)}' + ("," + rest[1:] if rest != "{}" else "}")
    else:
        after = json.dumps(redact(table, entity.model_dump(mode="json")), separators=(",", ":"))
    diff = '{"before":null,"after":' + after + "}"
    return PendingEntry("create", table, entity.id, entity_name(entity), diff)


class AuditBatch:
    """The audit entries of one write transaction on `conn`, written as they accumulate.

    `add` queues an entry and inserts the queue once it holds `batch` entries; `flush` inserts
    the rest (call it before committing). Every entry is stamped with `at` (default: now, i.e.
    when the transaction started), `actor` and `request_id`.
    """

    def __init__(
        self,
        conn: Connection,
        actor: str,
        request_id: str | None,
        *,
        at: float | None = None,
        batch: int = BATCH,
    ) -> None:
        self._conn = conn
        self._actor = actor
        self._request_id = request_id
        self._at = time.time() if at is None else at
        self._batch = max(1, batch)
        self._queue: list[PendingEntry] = []
        self.written = 0
        """How many entries this batch has inserted so far."""

    def add(self, entry: PendingEntry) -> None:
        self._queue.append(entry)
        if len(self._queue) >= self._batch:
            self.flush()

    def flush(self) -> None:
        """Insert every queued entry."""
        if self._queue:
            write_entries(self._conn, self._queue, self._actor, self._request_id, at=self._at)
            self.written += len(self._queue)
            self._queue = []


def write_entries(
    conn: Connection,
    entries: Sequence[PendingEntry],
    actor: str,
    request_id: str | None,
    *,
    at: float | None = None,
) -> None:
    """Insert `entries` (in order) stamped with one time (default: now), `actor` and
    `request_id`."""
    if not entries:
        return
    at = time.time() if at is None else at
    conn.execute(
        insert(tables.audit_log),
        [
            {
                "id": str(uuid.uuid4()),
                "at": at,
                "actor": actor,
                "action": e.action,
                "entity": e.entity,
                "entity_id": e.entity_id,
                "entity_name": e.entity_name,
                "diff": e.diff,
                "request_id": request_id,
            }
            for e in entries
        ],
    )


def list_entries(
    conn: Connection,
    *,
    actor: str | None,
    entity: str | None,
    action: str | None,
    since: float | None,
    until: float | None,
    size: int,
    offset: str | None,
) -> tuple[list[AuditEntry], str | None]:
    """One page, newest first. The offset is the `seq` of the last entry shown, as text."""
    table = tables.audit_log
    conditions: list[ColumnElement[bool]] = []
    for column, value in (("actor", actor), ("entity", entity), ("action", action)):
        if value is not None:
            conditions.append(table.c[column] == value)
    if since is not None:
        conditions.append(table.c.at >= since)
    if until is not None:
        conditions.append(table.c.at < until)
    if offset is not None:
        conditions.append(table.c.seq < _parse_offset(offset))
    limit = max(1, min(size, MAX_PAGE))
    rows = list(
        conn.execute(select(table).where(*conditions).order_by(table.c.seq.desc()).limit(limit + 1))
    )
    next_offset = str(rows[limit - 1].seq) if len(rows) > limit else None
    return [_entry(row) for row in rows[:limit]], next_offset


def _parse_offset(offset: str) -> int:
    if not offset.isdigit() or len(offset) > 18:
        raise ValueError(f"invalid offset: {offset!r}")
    return int(offset)


def _entry(row: Any) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        at=float(row.at),
        actor=row.actor,
        action=row.action,
        entity=row.entity,
        entity_id=row.entity_id,
        entity_name=row.entity_name,
        diff=json.loads(row.diff),
        request_id=row.request_id,
    )


def prune(conn: Connection, older_than: float) -> int:
    """Delete entries older than `older_than`; return how many."""
    result = conn.execute(delete(tables.audit_log).where(tables.audit_log.c.at < older_than))
    return int(result.rowcount)
