"""Contract: `Writer.insert_many` (bulk creates of pre-checked entities) and the audit trail of
big writes, which the store writes in batches during the transaction."""

from __future__ import annotations

import json
import time

import pytest

from control_plane.store import Store, Writer
from control_plane.store.errors import ConflictError
from control_plane.store.sql_audit import BATCH, entity_change
from control_plane.store.sql_tx import SqlTx
from gateway.credentials import hash_key
from gateway.entities import Consumer, Entity, KeyAuthCredential, Plugin, Ref, Route, Service
from tests.control_plane.store.ids import CONSUMER, SERVICE

AI_PROXY_CONFIG = {
    "targets": [
        {
            "route_type": "llm/v1/chat",
            "model": {"provider": "openai", "name": "gpt-4o"},
            "auth": {"header_name": "Authorization", "header_value": "Bearer sk-live-123"},
        }
    ]
}


def _consumers(count: int) -> list[Consumer]:
    return [Consumer(username=f"user-{i:05d}") for i in range(count)]


def test_bulk_inserted_entities_read_back_in_order_in_one_revision(store: Store) -> None:
    services = [Service(name=f"svc-{i}", host=f"h{i}") for i in range(5)]
    routes = [
        Route(name=f"r-{i}", paths=[f"/{i}"], service=Ref(id=s.id)) for i, s in enumerate(services)
    ]

    def write(w: Writer) -> None:
        w.insert_many(services)
        w.insert_many(routes)

    _, event = store.write(write)
    assert event is not None and event.revision == 1
    assert store.read(lambda r: r.all(Service)) == services
    assert store.read(lambda r: r.all(Route, {"service_id": services[2].id})) == [routes[2]]
    assert store.read(lambda r: r.find(Service, "name", "svc-3")) == services[3]
    first_page, cursor = store.read(lambda r: r.page(Route, None, None, 3))
    assert first_page == routes[:3] and cursor is not None
    assert store.read(lambda r: r.page(Route, None, cursor, 3)) == (routes[3:], None)


def test_bulk_inserted_credentials_are_found_and_announced(store: Store) -> None:
    keys = [KeyAuthCredential(consumer=Ref(id=CONSUMER), key_hash=hash_key(f"k{i}")) for i in "ab"]

    def write(w: Writer) -> None:
        w.insert(Consumer(id=CONSUMER, username="alice"))
        w.insert_many(keys)

    _, event = store.write(write)
    assert event is not None
    assert event.key_hashes == {hash_key("ka"), hash_key("kb")}
    match = store.lookup_credential(hash_key("kb"))
    assert match is not None and match.consumer.username == "alice"


def test_each_bulk_insert_is_audited_like_a_single_insert(store: Store) -> None:
    """Same entries (and redactions) as `insert` would record: one per entity, in order."""
    consumer = Consumer(id=CONSUMER, username="alice", custom_id="A-1", tags=["t"])
    service = Service(id=SERVICE, name="svc", host="h")
    credential = KeyAuthCredential(consumer=Ref(id=CONSUMER), key_hash=hash_key("s3cret"), ttl=60)
    plugin = Plugin(name="ai-proxy-advanced", service=Ref(id=SERVICE), config=AI_PROXY_CONFIG)
    entities: list[tuple[str, Entity]] = [
        ("consumers", consumer),
        ("services", service),
        ("keyauth_credentials", credential),
        ("plugins", plugin),
    ]

    def write(w: Writer) -> None:
        for _, entity in entities:
            w.insert_many([entity])

    store.write(write, actor="ci", request_id="req-7")
    entries, _ = store.list_audit()
    entries.reverse()  # oldest first
    assert [(e.action, e.entity, e.entity_id, e.actor, e.request_id) for e in entries] == [
        ("create", table, entity.id, "ci", "req-7") for table, entity in entities
    ]
    for entry, (table, entity) in zip(entries, entities, strict=True):
        assert entry.diff == json.loads(entity_change(table, None, entity).diff)
    assert [e.entity_name for e in entries] == ["alice", "svc", None, "ai-proxy-advanced"]
    assert entries[2].diff["after"]["key_hash"] == "[redacted]"
    auth = entries[3].diff["after"]["config"]["targets"][0]["auth"]
    assert auth["header_value"] == "[redacted]"
    assert "sk-live-123" not in json.dumps([e.diff for e in entries])


def test_bulk_insert_of_mixed_kinds_is_refused_and_writes_nothing(store: Store) -> None:
    with pytest.raises(TypeError):
        store.write(lambda w: w.insert_many([Service(name="s", host="h"), *_consumers(1)]))
    assert store.revision() == 0
    assert store.read(lambda r: r.all(Service)) == []


def test_an_empty_bulk_insert_changes_nothing(store: Store) -> None:
    _, event = store.write(lambda w: w.insert_many([]))
    assert event is None
    assert store.revision() == 0


def test_the_database_still_refuses_a_duplicate_in_a_bulk_insert(store: Store) -> None:
    """No per-row checks, but the unique constraints remain: nothing of the write is kept."""
    store.write(lambda w: w.insert(Consumer(username="user-00001")))
    with pytest.raises(ConflictError):
        store.write(lambda w: w.insert_many(_consumers(3)))
    assert [c.username for c in store.read(lambda r: r.all(Consumer))] == ["user-00001"]
    assert store.revision() == 1
    assert len(store.list_audit()[0]) == 1


def test_a_big_write_records_every_entry_with_the_transaction_start_time(store: Store) -> None:
    count = BATCH * 2 + 17  # spans several audit batches and a partial last one
    consumers = _consumers(count)
    before = time.time()
    store.write(lambda w: w.insert_many(consumers), actor="bulk")
    after = time.time()
    seen: list[str | None] = []
    offset: str | None = None
    for _ in range(10):  # bounded: 3 pages expected
        page, offset = store.list_audit(size=1000, offset=offset)
        seen.extend(e.entity_id for e in page)
        assert {e.actor for e in page} == {"bulk"}
        assert len({e.at for e in page}) == 1 and before <= page[0].at <= after
        if offset is None:
            break
    assert seen == [c.id for c in reversed(consumers)]  # newest first: all, in write order


def test_a_big_write_that_fails_late_leaves_no_audit_entry(store: Store) -> None:
    """Entries already written in batches roll back with the failed transaction."""
    written: list[int] = []

    def write(w: Writer) -> None:
        w.insert_many(_consumers(BATCH + 5))
        assert isinstance(w, SqlTx) and w.audit is not None
        written.append(w.audit.written)  # a full batch is in the table, the rest queued
        raise RuntimeError("late failure")

    with pytest.raises(RuntimeError, match="late failure"):
        store.write(write)
    assert written == [BATCH]
    assert store.list_audit() == ([], None)
    assert store.read(lambda r: r.all(Consumer)) == []
