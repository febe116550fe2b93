"""Snapshot deltas: only the entities that changed between two snapshots.

A delta lists, per kind (services, routes, plugins, consumers), the entities upserted (new or
changed, whole values) and the ids deleted, plus the base hash it applies to and the hash of the
result. `apply_delta` replaces changed entities in place, drops deleted ones and appends new ones,
then checks the resulting hash, so a node either ends up with exactly the control plane's snapshot
or gets a `DeltaError` (and falls back to a full snapshot). `diff` only returns a delta when that
positional rule reproduces the new snapshot's order; otherwise the caller sends a full snapshot.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from gateway.entities import Consumer, Entity, Plugin, Route, Service
from gateway.entity_decoder import EntityDecoder
from gateway.snapshot import Snapshot

KINDS: dict[str, type[Entity]] = {
    "services": Service,
    "routes": Route,
    "plugins": Plugin,
    "consumers": Consumer,
}

E = TypeVar("E", bound=Entity)


class DeltaError(ValueError):
    """The delta does not apply to this snapshot, or its result is not the announced one."""


@dataclass(frozen=True, slots=True)
class KindChanges:
    upserts: tuple[Entity, ...] = ()
    deletes: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class SnapshotDelta:
    """The change from the snapshot hashed `base_hash` to the one at `version` hashed `hash`."""

    base_version: int
    base_hash: str
    version: int
    hash: str
    changes: Mapping[str, KindChanges] = field(default_factory=dict)

    @property
    def size(self) -> int:
        """How many entities it upserts or deletes."""
        return sum(len(c.upserts) + len(c.deletes) for c in self.changes.values())

    def encode(self) -> bytes:
        doc: dict[str, Any] = {
            "base_version": self.base_version,
            "base_hash": self.base_hash,
            "version": self.version,
            "hash": self.hash,
            "changes": {
                kind: {
                    "upserts": [e.model_dump(mode="json") for e in c.upserts],
                    "deletes": list(c.deletes),
                }
                for kind, c in self.changes.items()
            },
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()

    @staticmethod
    def decode(data: bytes) -> SnapshotDelta:
        """Parse `encode()` output; raises DeltaError if it is malformed."""
        try:
            doc = json.loads(data)
            changes: dict[str, KindChanges] = {}
            entities = EntityDecoder()  # upserts share equal values, as a decoded snapshot's do
            for kind, c in doc["changes"].items():
                model = KINDS[kind]
                changes[kind] = KindChanges(
                    entities.validate_all(model, c["upserts"]),
                    tuple(str(i) for i in c["deletes"]),
                )
            return SnapshotDelta(
                int(doc["base_version"]),
                str(doc["base_hash"]),
                int(doc["version"]),
                str(doc["hash"]),
                changes,
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise DeltaError(f"malformed delta: {exc}") from exc


def diff(old: Snapshot, new: Snapshot) -> SnapshotDelta | None:
    """The delta from `old` to `new`, or None when applying it could not reproduce `new`'s
    entity order (e.g. entities were reordered): send a full snapshot then."""
    changes: dict[str, KindChanges] = {}
    for kind in KINDS:
        old_items: tuple[Entity, ...] = getattr(old, kind)
        new_items: tuple[Entity, ...] = getattr(new, kind)
        kind_changes = _diff_kind(old_items, new_items)
        if kind_changes is None:
            return None
        if kind_changes.upserts or kind_changes.deletes:
            changes[kind] = kind_changes
    return SnapshotDelta(old.version, old.hash, new.version, new.hash, changes)


def apply_delta(snapshot: Snapshot, delta: SnapshotDelta) -> Snapshot:
    """The snapshot `delta` leads to from `snapshot`; raises DeltaError if `snapshot` is not the
    delta's base or the result does not hash to `delta.hash`."""
    if snapshot.hash != delta.base_hash:
        raise DeltaError(
            f"delta applies to {delta.base_hash[:12]}, this node runs {snapshot.hash[:12]}"
        )
    unknown = set(delta.changes) - set(KINDS)
    if unknown:
        raise DeltaError(f"unknown entity kinds in delta: {sorted(unknown)}")
    parts: dict[str, tuple[Entity, ...]] = {}
    for kind in KINDS:
        items: tuple[Entity, ...] = getattr(snapshot, kind)
        change = delta.changes.get(kind)
        parts[kind] = items if change is None else _apply_kind(items, change)
    result = Snapshot.create(
        delta.version,
        _typed(parts["services"], Service),
        _typed(parts["routes"], Route),
        _typed(parts["plugins"], Plugin),
        _typed(parts["consumers"], Consumer),
    )
    if result.hash != delta.hash:
        raise DeltaError(f"delta result hashes to {result.hash[:12]}, expected {delta.hash[:12]}")
    return result


def _diff_kind(old: Sequence[Entity], new: Sequence[Entity]) -> KindChanges | None:
    old_by_id = {e.id: e for e in old}
    new_ids = {e.id for e in new}
    upserts = tuple(e for e in new if old_by_id.get(e.id) != e)
    deletes = tuple(e.id for e in old if e.id not in new_ids)
    change = KindChanges(upserts, deletes)
    predicted = [e.id for e in _apply_kind(tuple(old), change)]
    if predicted != [e.id for e in new]:
        return None
    return change


def _apply_kind(items: tuple[Entity, ...], change: KindChanges) -> tuple[Entity, ...]:
    deleted = set(change.deletes)
    upserts = {e.id: e for e in change.upserts}
    out: list[Entity] = []
    for entity in items:
        if entity.id in deleted:
            continue
        out.append(upserts.pop(entity.id, entity))
    # What is left is new: appended in the delta's order (the store lists by insertion order).
    out.extend(e for e in change.upserts if e.id in upserts)
    return tuple(out)


def _typed(items: tuple[Entity, ...], model: type[E]) -> tuple[E, ...]:
    for item in items:
        if not isinstance(item, model):
            raise DeltaError(f"expected {model.__name__}, got {type(item).__name__}")
    return items  # type: ignore[return-value]  # checked just above
