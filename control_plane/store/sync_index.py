"""Stored entities of one kind, indexed for the declarative sync's matching.

One bulk read per kind feeds dicts by id, by natural key and (for entities without one) by
content, so matching a declared entity is a lookup, never a scan of the store.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel

from control_plane.store.tables import plugin_cache_key
from gateway.entities import Consumer, Entity, KeyAuthCredential, Plugin, Route, Service

MODELS: dict[str, type[Entity]] = {
    "service": Service,
    "consumer": Consumer,
    "route": Route,
    "plugin": Plugin,
    "keyauth_credential": KeyAuthCredential,
}
ORDER = tuple(MODELS)
"""Kinds with parents before children."""

_VOLATILE = {"id", "created_at", "updated_at"}

M = TypeVar("M", bound=BaseModel)
_ALL_FIELDS: dict[type[BaseModel], set[str]] = {}


def compact(model: M) -> M:
    """The same validated value, sharing what pydantic would allocate per instance.

    Each validated model carries its own `__pydantic_fields_set__` (a set: ~700 bytes for an
    entity, nearly half of a credential's footprint). Nothing in Lockgate reads it (no
    `exclude_unset`), so planned entities share one set of all field names per model; a sync
    of 100k credentials holds them in about half the memory. Only for already-validated values.
    """
    cls = type(model)
    fields = _ALL_FIELDS.setdefault(cls, set(cls.model_fields))
    values: dict[str, Any] = {
        key: compact(value) if isinstance(value, BaseModel) else value
        for key, value in model.__dict__.items()
    }
    return cls.model_construct(_fields_set=fields, **values)


def natural_keys(entity: Entity) -> list[tuple[str, str]]:
    """Unique (column, value) pairs identifying an entity besides its id."""
    pairs: list[tuple[str, str | None]]
    if isinstance(entity, Service | Route):
        pairs = [("name", entity.name)]
    elif isinstance(entity, Consumer):
        pairs = [("username", entity.username), ("custom_id", entity.custom_id)]
    elif isinstance(entity, Plugin):
        pairs = [("cache_key", plugin_cache_key(entity)), ("instance_name", entity.instance_name)]
    elif isinstance(entity, KeyAuthCredential):
        pairs = [("key_hash", entity.key_hash)]
    else:
        pairs = []
    return [(k, v) for k, v in pairs if v is not None]


def content_key(entity: Entity) -> str:
    """The entity's content without id and timestamps, canonically encoded."""
    return json.dumps(entity.model_dump(mode="json", exclude=_VOLATILE), sort_keys=True)


def has_tags(entity: Entity, tags: Sequence[str]) -> bool:
    """Whether the entity carries every tag in `tags` (decK's select tags are ANDed)."""
    if not tags:
        return True
    have = entity.tags or ()
    return all(tag in have for tag in tags)


class StoredIndex:
    """The stored entities of one kind and the select tags scoping a sync."""

    def __init__(self, entities: list[Entity], select_tags: Sequence[str]) -> None:
        self.entities = entities
        self.select_tags = tuple(select_tags)
        self.by_id: dict[str, Entity] = {}
        self.by_key: dict[tuple[str, str], Entity] = {}
        self.by_content: dict[str, list[Entity]] = {}
        self._names: dict[str, Entity] = {}
        for entity in entities:
            self.by_id[entity.id] = entity
            keys = natural_keys(entity)
            for pair in keys:
                self.by_key.setdefault(pair, entity)
                if pair[0] in ("name", "username", "custom_id"):
                    self._names.setdefault(pair[1], entity)
            if not keys:
                self.by_content.setdefault(content_key(entity), []).append(entity)

    def in_scope(self, entity: Entity) -> bool:
        return has_tags(entity, self.select_tags)

    def scoped(self) -> Iterator[Entity]:
        """The stored entities a sync may update or delete."""
        return (e for e in self.entities if self.in_scope(e))

    def lookup(self, key: str) -> Entity | None:
        """The stored entity a file reference names: by id, else name, username, custom_id."""
        return self.by_id.get(key) or self._names.get(key)
