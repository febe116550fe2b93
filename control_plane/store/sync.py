"""Make the store equal a declared state (decK `gateway sync` semantics), in one transaction.

Declared entities match stored ones by id, else by natural key: name (services, routes),
username or custom_id (consumers), (name, route, service, consumer) (plugins), key hash
(credentials); unnamed services and routes match an unclaimed stored one with the same content.
Matched entities keep their ids and are updated only if they differ; the rest are created;
stored entities nothing matched are deleted. Every entity is validated as the Admin API would,
and all errors are reported together, naming the entity by its place in the document.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from control_plane.declarative import Declared, Document
from control_plane.store.errors import SchemaViolation, StoreError
from control_plane.store.protocol import Reader, Writer
from control_plane.store.sync_errors import SyncError, SyncProblem
from control_plane.store.tables import plugin_cache_key
from control_plane.store.validation import (
    build_consumer,
    build_credential,
    build_plugin,
    build_route,
    build_service,
    check_id,
)
from gateway.credentials import hash_key
from gateway.entities import Consumer, Entity, KeyAuthCredential, Plugin, Route, Service, new_id
from gateway.plugins.base import Plugin as PluginType

MODELS: dict[str, type[Entity]] = {
    "service": Service,
    "consumer": Consumer,
    "route": Route,
    "plugin": Plugin,
    "keyauth_credential": KeyAuthCredential,
}
ORDER = tuple(MODELS)  # parents before children
_VOLATILE = {"id", "created_at", "updated_at"}


@dataclass(frozen=True, slots=True)
class Change:
    kind: str
    name: str
    entity: Entity
    path: str = ""


@dataclass(slots=True)
class Plan:
    creating: list[Change] = field(default_factory=list)
    updating: list[Change] = field(default_factory=list)
    deleting: list[Change] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.creating or self.updating or self.deleting)

    def report(self) -> dict[str, Any]:
        """The `/config` answer: decK's JSON diff output without bodies."""

        def items(changes: list[Change]) -> list[dict[str, str]]:
            return [{"kind": c.kind, "name": c.name} for c in changes]

        return {
            "changes": {
                "creating": items(self.creating),
                "updating": items(self.updating),
                "deleting": items(self.deleting),
            },
            "summary": {
                "created": len(self.creating),
                "updated": len(self.updating),
                "deleted": len(self.deleting),
            },
        }


def _same(a: Entity, b: Entity) -> bool:
    return a.model_dump(exclude=_VOLATILE) == b.model_dump(exclude=_VOLATILE)


def _natural_keys(entity: Entity) -> list[tuple[str, str]]:
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


class _Planner:
    def __init__(self, reader: Reader, available: Mapping[str, PluginType[Any]], now: int) -> None:
        self.available = available
        self.now = now
        self.existing = {kind: reader.all(model) for kind, model in MODELS.items()}
        self.claimed: set[str] = set()
        self.path_ids: dict[str, str] = {}
        self.keys: dict[str, dict[str, str]] = {kind: {} for kind in MODELS}
        """Per kind: every declared id, name, username, custom_id -> planned id."""
        self.labels: dict[str, str] = {}
        for kind in ORDER:  # parents first: plugin labels name their scopes
            for entity in self.existing[kind]:
                self.labels[entity.id] = self._label(entity)
        self.taken: dict[tuple[str, str, str], str] = {}
        self.problems: list[SyncProblem] = []
        self.plan = Plan()

    def run(self, doc: Document) -> Plan:
        for kind in ORDER:
            for declared in doc.of(kind):
                self._declare(declared)
        if self.problems:
            raise SyncError(self.problems)
        for kind in reversed(ORDER):
            for entity in self.existing[kind]:
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
        given = data.get("id")
        planned_id = given if isinstance(given, str) else new_id()
        self.path_ids[declared.path] = planned_id
        try:
            check_id(data)
            for ref_field, ref in declared.refs.items():
                data[ref_field] = {"id": self._resolve(ref.kind, ref.path, ref.key, ref_field)}
            match = self._match_by_id(kind, data)
            if kind == "keyauth_credential":
                data = self._credential_input(data, match)
            entity = self._build(
                kind, {**data, "id": planned_id, "created_at": self.now, "updated_at": self.now}
            )
        except SchemaViolation as exc:
            self._fail(declared, exc)
            return
        if match is None and "id" not in data:
            match = self._match_by_key(kind, entity)
        if match is not None:
            entity = entity.model_copy(update={"id": match.id, "created_at": match.created_at})
            self.path_ids[declared.path] = match.id
        try:
            self._reserve(kind, entity)
        except SchemaViolation as exc:
            self._fail(declared, exc)
            return
        label = self._label(entity)
        if match is None:
            self.plan.creating.append(Change(kind, label, entity, declared.path))
        elif _same(match, entity):
            self.claimed.add(match.id)
        else:
            entity = entity.model_copy(update={"updated_at": self.now})
            self.claimed.add(match.id)
            self.plan.updating.append(Change(kind, label, entity, declared.path))

    def _resolve(self, kind: str, path: str | None, key: str | None, ref_field: str) -> str:
        if path is not None:
            return self.path_ids[path]
        found = self.keys[kind].get(key or "")
        if found is None:
            message = f"no {kind} '{key}' in the declarative config"
            raise SchemaViolation({ref_field: message}, [(ref_field, message)])
        return found

    def _match_by_id(self, kind: str, data: Mapping[str, Any]) -> Entity | None:
        wanted = data.get("id")
        for entity in self.existing[kind]:
            if entity.id == wanted and entity.id not in self.claimed:
                return entity
        return None

    def _match_by_key(self, kind: str, entity: Entity) -> Entity | None:
        keys = _natural_keys(entity)
        for existing in self.existing[kind]:
            if existing.id in self.claimed:
                continue
            if keys:
                theirs = dict(_natural_keys(existing))
                if any(theirs.get(col) == val for col, val in keys):
                    return existing
            elif not _natural_keys(existing) and _same(existing, entity):
                return existing
        return None

    def _credential_input(self, data: dict[str, Any], match: Entity | None) -> dict[str, Any]:
        out = dict(data)
        key = out.pop("key", None)
        if isinstance(key, str) and key:
            out["key_hash"] = hash_key(key)
        elif isinstance(match, KeyAuthCredential):
            out["key_hash"] = match.key_hash
        else:
            message = "required field missing" if key is None else "expected a non-empty string"
            raise SchemaViolation({"key": message}, [("key", message)])
        ttl = out.get("ttl")
        if isinstance(ttl, int) and not isinstance(ttl, bool):
            stored = self._stored_credential(out["key_hash"], match)
            keep = stored is not None and stored.ttl == ttl
            out["expires_at"] = stored.expires_at if keep and stored else self.now + ttl
        return out

    def _stored_credential(self, key_hash: str, match: Entity | None) -> KeyAuthCredential | None:
        if isinstance(match, KeyAuthCredential):
            return match
        for cred in self.existing["keyauth_credential"]:
            if isinstance(cred, KeyAuthCredential) and cred.key_hash == key_hash:
                return cred
        return None

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
        for column, value in [("id", entity.id), *_natural_keys(entity)]:
            if (kind, column, value) in self.taken:
                shown = "key" if column == "key_hash" else column
                fields = {shown: "<hidden>" if shown == "key" else value}
                message = f"duplicate of {self.taken[(kind, column, value)]}"
                raise SchemaViolation(fields, [(shown, message)])
            self.taken[(kind, column, value)] = self._label(entity)
        for column in ("id", "name", "username", "custom_id"):
            key = getattr(entity, column, None)
            if isinstance(key, str) and kind != "plugin":
                self.keys[kind][key] = entity.id
        self.labels[entity.id] = self._label(entity)

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
        for column in ("name", "username", "custom_id"):
            value = getattr(entity, column, None)
            if isinstance(value, str) and value:
                return value
        return entity.id


def plan_sync(
    reader: Reader, doc: Document, available: Mapping[str, PluginType[Any]], now: int
) -> Plan:
    """What syncing `doc` would change. Raises SyncError listing every invalid entity."""
    return _Planner(reader, available, now).run(doc)


def apply_sync(writer: Writer, plan: Plan) -> None:
    """Apply a plan made in the same transaction: deletes (children first), then per kind
    (parents first) updates and creates."""
    current = None
    try:
        for current in plan.deleting:
            writer.delete(type(current.entity), current.entity.id, cascade=False)
        for kind in ORDER:
            for current in plan.updating:
                if current.kind == kind:
                    writer.update(current.entity)
            for current in plan.creating:
                if current.kind == kind:
                    writer.insert(current.entity)
    except StoreError as exc:
        assert current is not None
        raise SyncError.from_store_error(current.path or current.kind, current.name, exc) from None
