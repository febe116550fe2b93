"""Apply a declarative sync plan inside the write transaction that planned it.

Deletes run first (children before parents), then per kind (parents first) updates and creates.
Creates are written in bulk with `Writer.insert_many`: the plan already checked unique values
and references against a full read of the store in the same transaction, so per-row checks
would only repeat that work (the database constraints remain the backstop).
"""

from __future__ import annotations

from control_plane.store.errors import StoreError
from control_plane.store.protocol import Writer
from control_plane.store.sync import Change, Plan, Written
from control_plane.store.sync_errors import SyncError
from control_plane.store.sync_index import ORDER

BATCH = 2000
"""Entities per bulk call: bounds the memory of one executemany's parameters."""


def apply_sync(writer: Writer, plan: Plan) -> None:
    """Write `plan`. Raises SyncError naming the entity whose write the store refused.

    Each create and delete written is replaced in the plan by its `Written` summary, so the
    planned entities are freed as they are written (a report needs only kind and name)."""
    current: Change | None = None
    # A scoped sync may leave children outside the select tags: let the store cascade to them
    # (and refuse to delete a service that out-of-scope routes still use).
    cascade = bool(plan.select_tags)
    try:
        for index, change in enumerate(plan.deleting):
            if isinstance(change, Change):
                current = change
                writer.delete(type(change.entity), change.entity.id, cascade=cascade)
                plan.deleting[index] = Written(change.kind, change.name)
        for kind in ORDER:
            for current in plan.updating:
                if current.kind == kind:
                    writer.update(current.entity)
            # Indexes, not the changes: each batch's entities are freed once it is written.
            indexes = [
                i for i, c in enumerate(plan.creating) if isinstance(c, Change) and c.kind == kind
            ]
            for start in range(0, len(indexes), BATCH):
                chunk = indexes[start : start + BATCH]
                batch = [c for i in chunk if isinstance(c := plan.creating[i], Change)]
                current = batch[0]
                writer.insert_many([c.entity for c in batch])
                for i, c in zip(chunk, batch, strict=True):
                    plan.creating[i] = Written(c.kind, c.name)
    except StoreError as exc:
        if current is None:
            raise
        raise SyncError.from_store_error(current.path or current.kind, current.name, exc) from None
