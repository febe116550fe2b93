"""Make the store equal a declared state (decK `gateway sync` semantics), in one transaction.

Declared entities match stored ones by id, else by natural key: name (services, routes),
username or custom_id (consumers), (name, route, service, consumer) (plugins), key hash
(credentials); unnamed services and routes match an unclaimed stored one with the same content.
Matched entities keep their ids and are updated only if they differ; the rest are created;
stored entities nothing matched are deleted. With select tags only stored entities carrying all
of them are matched or deleted, and declared entities get them added. Every entity is validated
as the Admin API would, and all errors are reported together, naming the entity by its place in
the document.

Matching uses indexes built from one bulk read per kind, so planning is linear in the size of
the document and the store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from control_plane.declarative import Declared, Document
from control_plane.store.errors import SchemaViolation
from control_plane.store.protocol import Reader
from control_plane.store.sync_credentials import credential_input
from control_plane.store.sync_errors import SyncError, SyncProblem
from control_plane.store.sync_index import (
    MODELS,
    ORDER,
    StoredIndex,
    compact,
    content_key,
    natural_keys,
)
from control_plane.store.validation import (
    build_consumer,
    build_credential,
    build_plugin,
    build_route,
    build_service,
    check_id,
)
from gateway.entities import Consumer, Entity, KeyAuthCredential, Plugin, Route, Service, new_id
from gateway.plugins.base import Plugin as PluginType

_VOLATILE = {"id", "created_at", "updated_at"}
_REFERABLE = ("service", "route", "consumer")
"""Kinds other entities point at (by nesting, name or id)."""


@dataclass(frozen=True, slots=True)
class Change:
    """One planned change: the entity as it will be stored (or, deleting, as it is), how a
    user names it, its place in the document, and for updates the stored value it replaces."""

    kind: str
    name: str
    entity: Entity
    path: str = ""
    old: Entity | None = None


@dataclass(frozen=True, slots=True)
class Written:
    """A create or delete that `apply_sync` has written: what a report still shows of it.
    (The entity itself is dropped: a first sync may plan 200k of them.)"""

    kind: str
    name: str


@dataclass(slots=True)
class Plan:
    """What a sync changes. `apply_sync` replaces each create and delete it writes by a
    `Written` (updates keep their bodies: the report shows them)."""

    creating: list[Change | Written] = field(default_factory=list)
    updating: list[Change] = field(default_factory=list)
    deleting: list[Change | Written] = field(default_factory=list)
    select_tags: tuple[str, ...] = ()

    def empty(self) -> bool:
        return not (self.creating or self.updating or self.deleting)


def _same(a: Entity, b: Entity) -> bool:
    """Equal but for id and timestamps. Compares the field values directly (nested models
    compare by value): a no-op sync of 200k entities makes this comparison 200k times."""
    if type(a) is not type(b):
        return False
    theirs = b.__dict__
    return all(value == theirs[key] for key, value in a.__dict__.items() if key not in _VOLATILE)


def _with_tags(data: dict[str, Any], select_tags: tuple[str, ...]) -> dict[str, Any]:
    if not select_tags:
        return data
    tags = data.get("tags")
    if tags is not None and not isinstance(tags, list):
        return data  # the builder reports the type error
    have = list(tags or [])
    return {**data, "tags": have + [t for t in select_tags if t not in have]}


class _Planner:
    def __init__(
        self,
        reader: Reader,
        available: Mapping[str, PluginType[Any]],
        now: int,
        select_tags: tuple[str, ...],
    ) -> None:
        self.available = available
        self.now = now
        self.select_tags = select_tags
        self.stored = {
            kind: StoredIndex(reader.all(model), select_tags) for kind, model in MODELS.items()
        }
        self.claimed: set[str] = set()
        self.path_ids: dict[str, str] = {}
        """Document path of each declared parent (service, route, consumer) -> planned id."""
        self.keys: dict[str, dict[str, str]] = {kind: {} for kind in _REFERABLE}
        """Per referable kind: every declared id, name, username, custom_id -> planned id."""
        self.labels: dict[str, str] = {}
        """Names of services, routes and consumers by id, for plugin labels."""
        for kind in _REFERABLE:
            for entity in self.stored[kind].entities:
                self.labels[entity.id] = self._label(entity)
        self.taken: dict[tuple[str, str], dict[str, str]] = {}
        """(kind, column) -> unique value -> label of the declared entity holding it."""
        self.problems: list[SyncProblem] = []
        self.plan = Plan(select_tags=select_tags)

    def run(self, doc: Document) -> Plan:
        for kind in ORDER:
            # Consume the document as it is planned: each declared record is dropped once its
            # entity is built, so the two are not both held for the whole document.
            items = doc.of(kind)
            items.reverse()
            while items:
                self._declare(items.pop())
        if self.problems:
            raise SyncError(self.problems)
        for kind in reversed(ORDER):
            for entity in self.stored[kind].scoped():
                if entity.id not in self.claimed:
                    self.plan.deleting.append(Change(kind, self._label(entity), entity))
        return self.plan

    def _fail(self, declared: Declared, violation: SchemaViolation) -> None:
        name = declared.data.get("name") if declared.kind == "plugin" else declared.label()
        label = name if isinstance(name, str) else None
        self.problems.append(SyncProblem(declared.path, label, violation))

    def _declare(self, declared: Declared) -> None:
        kind = declared.kind
        data = {k: v for k, v in declared.data.items() if k not in ("created_at", "updated_at")}
        data = _with_tags(data, self.select_tags)
        given = data.get("id")
        planned_id = given if isinstance(given, str) else new_id()
        parent = kind in _REFERABLE
        if parent:
            self.path_ids[declared.path] = planned_id
        stored = self.stored[kind]
        try:
            check_id(data)
            for ref_field, ref in declared.refs.items():
                data[ref_field] = {"id": self._resolve(ref.kind, ref.path, ref.key, ref_field)}
            match = stored.by_id.get(given) if isinstance(given, str) else None
            if match is not None:
                self._check_scope(match, "id")
                match = None if match.id in self.claimed else match
            if kind == "keyauth_credential":
                data = self._credential_input(data, match)
            entity = self._build(
                kind, {**data, "id": planned_id, "created_at": self.now, "updated_at": self.now}
            )
            if match is None and "id" not in data:
                match = self._match_by_key(kind, entity)
        except SchemaViolation as exc:
            self._fail(declared, exc)
            return
        if match is not None:
            entity = entity.model_copy(update={"id": match.id, "created_at": match.created_at})
            if parent:
                self.path_ids[declared.path] = match.id
        try:
            self._reserve(kind, entity)
        except SchemaViolation as exc:
            self._fail(declared, exc)
            return
        label = self._label(entity)
        if match is None:
            self.plan.creating.append(Change(kind, label, compact(entity), declared.path))
        elif _same(match, entity):
            self.claimed.add(match.id)
        else:
            entity = entity.model_copy(update={"updated_at": self.now})
            self.claimed.add(match.id)
            self.plan.updating.append(Change(kind, label, entity, declared.path, match))

    def _check_scope(self, entity: Entity, column: str) -> None:
        """A declared entity may not take over a stored one outside the select tags."""
        if not self.stored[_kind_of(entity)].in_scope(entity):
            shown = "key" if column == "key_hash" else column
            message = (
                f"a stored entity with this {shown} lacks the select tags "
                f"{', '.join(self.select_tags)}"
            )
            raise SchemaViolation({shown: message}, [(shown, message)])

    def _resolve(self, kind: str, path: str | None, key: str | None, ref_field: str) -> str:
        if path is not None:
            return self.path_ids[path]
        found = self.keys[kind].get(key or "")
        if found is None and self.select_tags:
            # Outside the select tags, stored entities are neither matched nor deleted, so the
            # file may point at them by name or id.
            outside = self.stored[kind].lookup(key or "")
            if outside is not None and not self.stored[kind].in_scope(outside):
                found = outside.id
        if found is None:
            message = f"no {kind} '{key}' in the declarative config"
            raise SchemaViolation({ref_field: message}, [(ref_field, message)])
        return found

    def _match_by_key(self, kind: str, entity: Entity) -> Entity | None:
        stored = self.stored[kind]
        keys = natural_keys(entity)
        if not keys:
            for candidate in stored.by_content.get(content_key(entity), ()):
                if candidate.id not in self.claimed and stored.in_scope(candidate):
                    return candidate
            return None
        for pair in keys:
            found = stored.by_key.get(pair)
            if found is not None and found.id not in self.claimed:
                self._check_scope(found, pair[0])
                return found
        return None

    def _credential_input(self, data: dict[str, Any], match: Entity | None) -> dict[str, Any]:
        stored = self.stored["keyauth_credential"]

        def by_hash(key_hash: str) -> KeyAuthCredential | None:
            found = stored.by_key.get(("key_hash", key_hash))
            return found if isinstance(found, KeyAuthCredential) else None

        current = match if isinstance(match, KeyAuthCredential) else None
        return credential_input(data, current, by_hash, self.now)

    def _build(self, kind: str, data: Mapping[str, Any]) -> Entity:
        if kind == "service":
            return build_service(data)
        if kind == "route":
            return build_route(data)
        if kind == "consumer":
            return build_consumer(data)
        if kind == "plugin":
            return build_plugin(data, self.available)
        return build_credential(data)

    def _reserve(self, kind: str, entity: Entity) -> None:
        """Refuse a second declared entity with the same id or unique value."""
        label = self._label(entity)
        pairs = [("id", entity.id), *natural_keys(entity)]
        for column, value in pairs:
            first = self.taken.get((kind, column), {}).get(value)
            if first is not None:
                shown = "key" if column == "key_hash" else column
                fields = {shown: "<hidden>" if shown == "key" else value}
                message = f"duplicate of {first}"
                raise SchemaViolation(fields, [(shown, message)])
        for column, value in pairs:
            self.taken.setdefault((kind, column), {})[value] = label
        if kind in _REFERABLE:
            keys = self.keys[kind]
            for column, value in pairs:
                if column in ("id", "name", "username", "custom_id"):
                    keys[value] = entity.id
            self.labels[entity.id] = label

    def _label(self, entity: Entity) -> str:
        if isinstance(entity, Plugin):
            scopes = [
                f"{name} {self.labels.get(ref.id, ref.id)}"
                for name, ref in (
                    ("service", entity.service),
                    ("route", entity.route),
                    ("consumer", entity.consumer),
                )
                if ref is not None
            ]
            return f"{entity.name} " + (f"for {', '.join(scopes)}" if scopes else "(global)")
        if isinstance(entity, Service | Route):
            return entity.name or entity.id
        if isinstance(entity, Consumer):
            return entity.username or entity.custom_id or entity.id
        return entity.id


def _kind_of(entity: Entity) -> str:
    for kind, model in MODELS.items():
        if type(entity) is model:
            return kind
    raise TypeError(type(entity).__name__)


def plan_sync(
    reader: Reader, doc: Document, available: Mapping[str, PluginType[Any]], now: int
) -> Plan:
    """What syncing `doc` would change. Raises SyncError listing every invalid entity."""
    return _Planner(reader, available, now, doc.select_tags).run(doc)
