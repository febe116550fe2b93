"""Apply a declarative sync plan inside the write transaction that planned it.

Deletes run first (children before parents), then per kind (parents first) updates and creates.
Creates are written in bulk with `Writer.insert_many`: the plan already checked unique values
and references against a full read of the store in the same transaction, so per-row checks
would only repeat that work (the database constraints remain the backstop).
"""

from __future__ import annotations

from control_plane.store.errors import StoreError
from control_plane.store.protocol import Writer
from control_plane.store.sync import Change, Plan, changes_of
from control_plane.store.sync_errors import SyncError
from control_plane.store.sync_index import ORDER

BATCH = 2000
"""Entities per bulk call: bounds the memory of one executemany's parameters."""


def apply_sync(writer: Writer, plan: Plan) -> None:
    """Write `plan`. Raises SyncError naming the entity whose write the store refused."""
    current: Change | None = None
    # A scoped sync may leave children outside the select tags: let the store cascade to them
    # (and refuse to delete a service that out-of-scope routes still use).
    cascade = bool(plan.select_tags)
    try:
        for current in plan.deleting:
            writer.delete(type(current.entity), current.entity.id, cascade=cascade)
        for kind in ORDER:
            for current in changes_of(plan, kind, "updating"):
                writer.update(current.entity)
            created = list(changes_of(plan, kind, "creating"))
            for start in range(0, len(created), BATCH):
                batch = created[start : start + BATCH]
                current = batch[0]
                writer.insert_many([c.entity for c in batch])
    except StoreError as exc:
        if current is None:
            raise
        raise SyncError.from_store_error(current.path or current.kind, current.name, exc) from None
