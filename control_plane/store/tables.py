"""The relational schema at the newest migration: one table per entity kind, the revision
counter, admin tokens and the audit log.

The migrations in `control_plane/store/migrations/versions` create these tables; a contract test
checks that the migrated schema matches this module, so change both together (a new migration
for every schema change).

Each entity table stores the whole entity as JSON in `data` and copies into columns only what
the database must enforce or index: the id, unique values, foreign keys. `seq` gives a stable
insertion order for listing and pagination. Foreign keys are DEFERRABLE INITIALLY DEFERRED so a
declarative sync can replace entities in any order inside one transaction; the store checks
references itself before each write, so the database constraint is only the backstop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

from gateway.entities import Consumer, Entity, KeyAuthCredential, Plugin, Route, Service

SCHEMA_VERSION = 2
"""Kept in `lockgate_schema` so a Lockgate older than the migrations (which checked only this
number) refuses a newer database; the migration revision in `alembic_version` is what counts."""

metadata = MetaData()


def _fk(target: str) -> ForeignKey:
    return ForeignKey(target, deferrable=True, initially="DEFERRED")


def _entity_table(name: str, *columns: Column[Any]) -> Table:
    return Table(
        name,
        metadata,
        Column("seq", Integer, primary_key=True, autoincrement=True),
        Column("id", String(36), nullable=False, unique=True),
        *columns,
        Column("data", Text, nullable=False),
    )


services = _entity_table(
    "services",
    Column("name", String(255), unique=True),
    Column("enabled", Boolean, nullable=False),
)
routes = _entity_table(
    "routes",
    Column("name", String(255), unique=True),
    Column("service_id", String(36), _fk("services.id"), index=True),
)
consumers = _entity_table(
    "consumers",
    Column("username", String(255), unique=True),
    Column("custom_id", String(255), unique=True),
)
keyauth_credentials = _entity_table(
    "keyauth_credentials",
    Column("consumer_id", String(36), _fk("consumers.id"), nullable=False, index=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    # 64-bit; on SQLite the 0001 INTEGER column already is (migration 0002 widens PostgreSQL's)
    Column("expires_at", BigInteger().with_variant(Integer(), "sqlite")),
)
plugins = _entity_table(
    "plugins",
    Column("name", String(255), nullable=False),
    Column("instance_name", String(255), unique=True),
    Column("cache_key", String(255), nullable=False, unique=True),
    Column("enabled", Boolean, nullable=False),
    Column("service_id", String(36), _fk("services.id"), index=True),
    Column("route_id", String(36), _fk("routes.id"), index=True),
    Column("consumer_id", String(36), _fk("consumers.id"), index=True),
)
revision = Table(
    "lockgate_revision",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("value", Integer, nullable=False),
)
schema_meta = Table(
    "lockgate_schema",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("version", Integer, nullable=False),
)

admin_tokens = Table(
    "admin_tokens",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("name", String(255), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", BigInteger, nullable=False),
    Column("last_used_at", BigInteger),
    Column("expires_at", BigInteger),
)
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("at", Double, nullable=False),
    Column("actor", String(255), nullable=False),
    Column("action", String(16), nullable=False),
    Column("entity", String(64), nullable=False),
    Column("entity_id", String(36)),
    Column("entity_name", String(255)),
    Column("diff", Text, nullable=False),
    Column("request_id", String(255)),
    Index("ix_audit_log_at", "at"),
)


def _ref_id(ref: Any) -> str | None:
    return None if ref is None else str(ref.id)


def plugin_cache_key(plugin: Plugin) -> str:
    """Kong's plugin uniqueness key: one instance per (name, route, service, consumer)."""
    parts = (plugin.name, _ref_id(plugin.route), _ref_id(plugin.service), _ref_id(plugin.consumer))
    return "plugins:" + ":".join(p or "" for p in parts)


def _service_columns(e: Any) -> dict[str, Any]:
    return {"name": e.name, "enabled": e.enabled}


def _route_columns(e: Any) -> dict[str, Any]:
    return {"name": e.name, "service_id": _ref_id(e.service)}


def _consumer_columns(e: Any) -> dict[str, Any]:
    return {"username": e.username, "custom_id": e.custom_id}


def _credential_columns(e: Any) -> dict[str, Any]:
    return {"consumer_id": e.consumer.id, "key_hash": e.key_hash, "expires_at": e.expires_at}


def _plugin_columns(e: Any) -> dict[str, Any]:
    return {
        "name": e.name,
        "instance_name": e.instance_name,
        "cache_key": plugin_cache_key(e),
        "enabled": e.enabled,
        "service_id": _ref_id(e.service),
        "route_id": _ref_id(e.route),
        "consumer_id": _ref_id(e.consumer),
    }


@dataclass(frozen=True, slots=True)
class Spec:
    """How one entity kind maps to its table.

    `unique` lists the unique columns checked before writes; `references` maps a foreign key
    column to (entity field, parent model); `children` lists (child model, column) pairs that
    reference this kind, used for cascades and restricted deletes.
    """

    name: str
    table: Table
    model: type[Entity]
    columns: Callable[[Any], dict[str, Any]]
    unique: tuple[str, ...]
    references: tuple[tuple[str, str, type[Entity]], ...] = ()


SPECS: dict[type[Entity], Spec] = {
    Service: Spec("services", services, Service, _service_columns, ("name",)),
    Route: Spec(
        "routes", routes, Route, _route_columns, ("name",), (("service_id", "service", Service),)
    ),
    Consumer: Spec("consumers", consumers, Consumer, _consumer_columns, ("username", "custom_id")),
    KeyAuthCredential: Spec(
        "keyauth_credentials",
        keyauth_credentials,
        KeyAuthCredential,
        _credential_columns,
        ("key_hash",),
        (("consumer_id", "consumer", Consumer),),
    ),
    Plugin: Spec(
        "plugins",
        plugins,
        Plugin,
        _plugin_columns,
        ("instance_name", "cache_key"),
        (
            ("service_id", "service", Service),
            ("route_id", "route", Route),
            ("consumer_id", "consumer", Consumer),
        ),
    ),
}
