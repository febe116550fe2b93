"""Contract: versioned migrations run on open, upgrade older databases, refuse newer ones."""

from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Engine, insert, inspect, select, text, update

from control_plane.store import SchemaTooNewError, Store, migrations, open_store, tables
from control_plane.store.sql import SqlStore, create_store_engine
from gateway.credentials import hash_key
from gateway.entities import Consumer, KeyAuthCredential, Ref, Service
from tests.control_plane.store.ids import CONSUMER, CREDENTIAL, SERVICE

EXPIRY = 2**33  # past 2038: needs the 64-bit column of 0002 on PostgreSQL


def _at_0001_with_data(database_url: str) -> Engine:
    """A database as the walking skeleton left it: schema 0001, some config, revision 7."""
    engine = create_store_engine(database_url)
    SqlStore(engine).migrate("0001")
    consumer = Consumer(id=CONSUMER, username="alice")
    credential = KeyAuthCredential(
        id=CREDENTIAL, consumer=Ref(id=CONSUMER), key_hash=hash_key("k"), expires_at=None
    )
    with engine.begin() as conn:
        conn.execute(
            insert(tables.services).values(
                id=SERVICE,
                name="svc",
                enabled=True,
                data=Service(id=SERVICE, name="svc", host="h").model_dump_json(),
            )
        )
        conn.execute(
            insert(tables.consumers).values(
                id=CONSUMER, username="alice", custom_id=None, data=consumer.model_dump_json()
            )
        )
        conn.execute(
            insert(tables.keyauth_credentials).values(
                id=CREDENTIAL,
                consumer_id=CONSUMER,
                key_hash=hash_key("k"),
                expires_at=None,
                data=credential.model_dump_json(),
            )
        )
        conn.execute(update(tables.revision).values(value=7))
    return engine


def _revision_of(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return migrations.current(conn)


def test_a_new_database_is_at_head_and_matches_the_table_definitions(
    store: Store, database_url: str
) -> None:
    engine = create_store_engine(database_url)
    try:
        with engine.connect() as conn:
            assert migrations.current(conn) == migrations.HEAD
            drift = compare_metadata(MigrationContext.configure(conn), tables.metadata)
        assert drift == []
    finally:
        engine.dispose()


def test_head_is_the_newest_shipped_revision() -> None:
    assert migrations.known_revisions() == ["0001", "0002", "0003", "0004"]
    assert migrations.known_revisions()[-1] == migrations.HEAD


def test_a_database_at_0001_is_upgraded_and_keeps_its_data(database_url: str) -> None:
    engine = _at_0001_with_data(database_url)
    assert _revision_of(engine) == "0001"
    assert not inspect(engine).has_table("audit_log")
    engine.dispose()

    store = open_store(database_url)
    try:
        assert store.revision() == 7
        assert [s.name for s in store.read(lambda r: r.all(Service))] == ["svc"]
        match = store.lookup_credential(hash_key("k"))
        assert match is not None and match.consumer.username == "alice"
        # the new tables work, and the old columns took 64-bit values
        store.create_admin_token("ci", "admin", "0" * 64)
        later = KeyAuthCredential(consumer=Ref(id=CONSUMER), key_hash="h2", expires_at=EXPIRY)
        _, event = store.write(lambda w: w.insert(later), actor="ops")
        assert event is not None and event.revision == 8
        assert [e.entity for e in store.list_audit()[0]] == ["keyauth_credentials", "admin_tokens"]
    finally:
        store.close()
    engine = create_store_engine(database_url)
    assert _revision_of(engine) == migrations.HEAD
    with engine.connect() as conn:
        assert conn.scalar(select(tables.schema_meta.c.version)) == tables.SCHEMA_VERSION == 2
    engine.dispose()


def test_a_database_from_before_migrations_is_adopted(database_url: str) -> None:
    """The walking skeleton created 0001's tables without Alembic's version table."""
    engine = _at_0001_with_data(database_url)
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE alembic_version"))
    engine.dispose()
    store = open_store(database_url)
    try:
        assert store.revision() == 7
        assert store.list_admin_tokens() == []
    finally:
        store.close()
    engine = create_store_engine(database_url)
    assert _revision_of(engine) == migrations.HEAD
    engine.dispose()


def test_opening_again_changes_nothing(database_url: str) -> None:
    first = open_store(database_url)
    first.write(lambda w: w.insert(Service(name="svc", host="h")))
    first.close()
    second = open_store(database_url)
    try:
        assert second.revision() == 1
        assert len(second.read(lambda r: r.all(Service))) == 1
    finally:
        second.close()


def test_a_database_from_a_newer_lockgate_is_refused(database_url: str) -> None:
    open_store(database_url).close()
    engine = create_store_engine(database_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    engine.dispose()
    with pytest.raises(SchemaTooNewError, match=r"revision 0099, newer than this Lockgate"):
        open_store(database_url)


def test_control_planes_starting_together_migrate_once(database_url: str) -> None:
    stores: list[Store] = []
    errors: list[BaseException] = []

    def start() -> None:
        try:
            stores.append(open_store(database_url))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert errors == []
        assert len(stores) == 4
        stores[0].write(lambda w: w.insert(Service(name="svc", host="h")))
        assert [s.revision() for s in stores] == [1, 1, 1, 1]
    finally:
        for store in stores:
            store.close()
