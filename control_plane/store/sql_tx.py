"""`Reader`/`Writer` over one SQLAlchemy connection inside a transaction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

from sqlalchemy import Connection, delete, insert, select, update
from sqlalchemy.sql.elements import ColumnElement

from control_plane.store import tables
from control_plane.store.errors import ForeignKeyViolation, UniqueViolation
from control_plane.store.protocol import Where
from control_plane.store.sql_audit import AuditBatch, created, entity_change
from gateway.entities import Consumer, Entity, KeyAuthCredential, Plugin, Route, Service

E = TypeVar("E", bound=Entity)


def _spec(model: type[Entity]) -> tables.Spec:
    return tables.SPECS[model]


def _ref(value: str | None) -> dict[str, str] | None:
    return None if value is None else {"id": value}


class SqlTx:
    """One transaction. Writes record what cached lookups they invalidate (see ChangeEvent)
    and add one audit entry per entity change to `audit` (which writes them in batches as
    they come; the store flushes the rest before committing). Without `audit` (a read
    transaction) every write raises."""

    def __init__(self, conn: Connection, audit: AuditBatch | None = None) -> None:
        self._conn = conn
        self._changed = False
        self.key_hashes: set[str] = set()
        self.consumer_ids: set[str] = set()
        self.audit = audit

    # -- reads ---------------------------------------------------------------------------------

    def revision(self) -> int:
        value = self._conn.scalar(select(tables.revision.c.value).where(tables.revision.c.id == 1))
        return int(value or 0)

    def get(self, model: type[E], entity_id: str) -> E | None:
        return self.find(model, "id", entity_id)

    def find(self, model: type[E], column: str, value: str) -> E | None:
        table = _spec(model).table
        row = self._conn.execute(
            select(table.c.data).where(table.c[column] == value).order_by(table.c.seq).limit(1)
        ).first()
        return None if row is None else model.model_validate_json(row.data)

    def all(self, model: type[E], where: Where | None = None) -> list[E]:
        table = _spec(model).table
        query = select(table.c.data).where(*self._conditions(model, where)).order_by(table.c.seq)
        return [model.model_validate_json(row.data) for row in self._conn.execute(query)]

    def page(
        self, model: type[E], where: Where | None, after: int | None, limit: int
    ) -> tuple[list[E], int | None]:
        table = _spec(model).table
        conditions = self._conditions(model, where)
        if after is not None:
            conditions.append(table.c.seq > after)
        query = (
            select(table.c.seq, table.c.data)
            .where(*conditions)
            .order_by(table.c.seq)
            .limit(limit + 1)
        )
        rows = list(self._conn.execute(query))
        next_cursor = rows[limit - 1].seq if len(rows) > limit else None
        return [model.model_validate_json(row.data) for row in rows[:limit]], next_cursor

    def _conditions(self, model: type[Entity], where: Where | None) -> list[ColumnElement[bool]]:
        table = _spec(model).table
        return [
            table.c[col].is_(None) if val is None else table.c[col] == val
            for col, val in (where or {}).items()
        ]

    # -- writes --------------------------------------------------------------------------------

    def changed(self) -> bool:
        return self._changed

    def insert(self, entity: Entity) -> None:
        spec = _spec(type(entity))
        columns = spec.columns(entity)
        self._check(spec, entity, columns)
        data = entity.model_dump_json()
        self._conn.execute(insert(spec.table).values(id=entity.id, data=data, **columns))
        self._changed = True
        self._track(spec, None, entity)

    def insert_many(self, entities: Sequence[Entity]) -> None:
        """Insert entities of one kind in one statement, without per-row checks: the caller
        has checked their unique values and references in this transaction (the database's
        constraints remain the backstop). Audited and tracked like `insert`."""
        if not entities:
            return
        spec = _spec(type(entities[0]))
        audit = self._audit()
        rows: list[dict[str, Any]] = []
        for entity in entities:
            if type(entity) is not spec.model:
                raise TypeError(f"insert_many: {type(entity).__name__} among {spec.name}")
            data = entity.model_dump_json()
            rows.append({"id": entity.id, "data": data, **spec.columns(entity)})
            audit.add(created(spec.name, entity, data))
            if isinstance(entity, KeyAuthCredential):
                self.key_hashes.add(entity.key_hash)
        self._conn.execute(insert(spec.table), rows)
        self._changed = True

    def update(self, entity: Entity) -> None:
        spec = _spec(type(entity))
        old = self.get(type(entity), entity.id)
        if old is None:
            raise LookupError(f"no {spec.name} entity with id {entity.id}")
        columns = spec.columns(entity)
        self._check(spec, entity, columns)
        data = entity.model_dump_json()
        self._conn.execute(
            update(spec.table).where(spec.table.c.id == entity.id).values(data=data, **columns)
        )
        self._changed = True
        self._track(spec, old, entity)

    def delete(self, model: type[Entity], entity_id: str, *, cascade: bool = True) -> None:
        spec = _spec(model)
        old = self.get(model, entity_id)
        if old is None:
            return
        if cascade:
            self._cascade(model, entity_id)
        self._conn.execute(delete(spec.table).where(spec.table.c.id == entity_id))
        self._changed = True
        self._track(spec, old, None)

    def _cascade(self, model: type[Entity], entity_id: str) -> None:
        if model is Service:
            if self.all(Route, {"service_id": entity_id}):
                raise ForeignKeyViolation.restricted("services", "routes")
            self._delete_all(Plugin, {"service_id": entity_id})
        elif model is Route:
            self._delete_all(Plugin, {"route_id": entity_id})
        elif model is Consumer:
            self._delete_all(KeyAuthCredential, {"consumer_id": entity_id})
            self._delete_all(Plugin, {"consumer_id": entity_id})

    def _delete_all(self, model: type[Entity], where: Where) -> None:
        for child in self.all(model, where):
            self.delete(model, child.id, cascade=False)

    def _check(self, spec: tables.Spec, entity: Entity, columns: dict[str, Any]) -> None:
        table = spec.table
        for column in spec.unique:
            value = columns[column]
            if value is None:
                continue
            clash = self._conn.scalar(
                select(table.c.id).where(table.c[column] == value, table.c.id != entity.id)
            )
            if clash is not None:
                raise UniqueViolation(self._unique_fields(column, value, columns))
        for column, field, parent in spec.references:
            ref_id = columns[column]
            if ref_id is not None and self.get(parent, ref_id) is None:
                raise ForeignKeyViolation.invalid_reference(field, ref_id, _spec(parent).name)

    @staticmethod
    def _unique_fields(column: str, value: Any, columns: dict[str, Any]) -> dict[str, Any]:
        if column == "cache_key":
            return {
                "name": columns["name"],
                "route": _ref(columns["route_id"]),
                "service": _ref(columns["service_id"]),
                "consumer": _ref(columns["consumer_id"]),
            }
        return {column: value}

    def _audit(self) -> AuditBatch:
        if self.audit is None:
            raise RuntimeError("a read transaction cannot write")
        return self.audit

    def _track(self, spec: tables.Spec, old: Entity | None, new: Entity | None) -> None:
        self._audit().add(entity_change(spec.name, old, new))
        for entity in (old, new):
            if isinstance(entity, KeyAuthCredential):
                self.key_hashes.add(entity.key_hash)
        if isinstance(old, Consumer):
            # A consumer change alters every cached match of its credentials.
            self.consumer_ids.add(old.id)
            for cred in self.all(KeyAuthCredential, {"consumer_id": old.id}):
                self.key_hashes.add(cred.key_hash)
