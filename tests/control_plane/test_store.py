"""The SQL store: transactions, revision, cascades, credential lookups, snapshots."""

from __future__ import annotations

import threading
import time

import pytest

from control_plane.store import Store, Writer
from control_plane.store.errors import ForeignKeyViolation, UniqueViolation
from gateway.credentials import hash_key
from gateway.entities import Consumer, KeyAuthCredential, Plugin, Ref, Route, Service


def _seed(w: Writer) -> None:
    w.insert(Service(id="00000000-0000-4000-8000-000000000001", name="svc", host="up"))
    w.insert(
        Route(
            id="00000000-0000-4000-8000-000000000002",
            name="r1",
            paths=["/a"],
            service=Ref(id="00000000-0000-4000-8000-000000000001"),
        )
    )


def test_every_write_bumps_the_revision_once(store: Store) -> None:
    assert store.revision() == 0
    _, event = store.write(_seed)
    assert event is not None and event.revision == 1
    assert store.revision() == 1


def test_a_write_that_changes_nothing_keeps_the_revision(store: Store) -> None:
    result, event = store.write(lambda w: w.revision())
    assert (result, event) == (0, None)
    assert store.revision() == 0


def test_a_failing_write_leaves_nothing_behind(store: Store) -> None:
    def half(w: Writer) -> None:
        w.insert(Service(name="first", host="up"))
        w.insert(Service(name="first", host="other"))

    with pytest.raises(UniqueViolation) as info:
        store.write(half)
    assert info.value.fields == {"name": "first"}
    assert str(info.value) == "UNIQUE violation detected on '{name=\"first\"}'"
    assert store.read(lambda r: r.all(Service)) == []
    assert store.revision() == 0


def test_deleting_a_service_that_routes_use_is_refused(store: Store) -> None:
    store.write(_seed)
    with pytest.raises(ForeignKeyViolation) as info:
        store.write(lambda w: w.delete(Service, "00000000-0000-4000-8000-000000000001"))
    assert str(info.value) == "an existing 'routes' entity references this 'services' entity"


def test_a_reference_to_a_missing_row_is_refused(store: Store) -> None:
    missing = "00000000-0000-4000-8000-00000000dead"
    with pytest.raises(ForeignKeyViolation) as info:
        store.write(lambda w: w.insert(Route(paths=["/"], service=Ref(id=missing))))
    assert info.value.field == "service"
    assert info.value.ref == {"id": missing}


def _consumer_with_key(w: Writer, key: str, expires_at: int | None = None) -> None:
    w.insert(Consumer(id="00000000-0000-4000-8000-0000000000c1", username="alice"))
    w.insert(
        KeyAuthCredential(
            id="00000000-0000-4000-8000-0000000000a1",
            consumer=Ref(id="00000000-0000-4000-8000-0000000000c1"),
            key_hash=hash_key(key),
            expires_at=expires_at,
        )
    )


def test_lookup_credential_finds_the_consumer_by_key_hash(store: Store) -> None:
    store.write(lambda w: _consumer_with_key(w, "s3cret"))
    match = store.lookup_credential(hash_key("s3cret"))
    assert match is not None
    assert match.consumer.username == "alice"
    assert match.credential.consumer_id == match.consumer.id
    assert store.lookup_credential(hash_key("other")) is None


def test_lookup_credential_ignores_expired_credentials(store: Store) -> None:
    store.write(lambda w: _consumer_with_key(w, "old", expires_at=int(time.time()) - 1))
    assert store.lookup_credential(hash_key("old")) is None


def test_deleting_a_consumer_deletes_its_credentials_and_plugins(store: Store) -> None:
    store.write(lambda w: _consumer_with_key(w, "k"))
    consumer_id = "00000000-0000-4000-8000-0000000000c1"
    store.write(lambda w: w.insert(Plugin(name="rate", consumer=Ref(id=consumer_id))))
    _, event = store.write(lambda w: w.delete(Consumer, consumer_id))
    assert event is not None
    assert event.key_hashes == {hash_key("k")}
    assert event.consumer_ids == {consumer_id}
    assert store.read(lambda r: (r.all(KeyAuthCredential), r.all(Plugin))) == ([], [])


def test_snapshot_holds_enabled_config_and_only_referenced_consumers(store: Store) -> None:
    def build(w: Writer) -> None:
        _seed(w)
        w.insert(Service(name="off", host="x", enabled=False))
        w.insert(Consumer(id="00000000-0000-4000-8000-0000000000a0", username="anon"))
        w.insert(Consumer(username="unreferenced"))
        w.insert(Consumer(id="00000000-0000-4000-8000-0000000000b0", username="scoped"))
        w.insert(Plugin(name="key-auth", config={"anonymous": "anon"}))
        w.insert(Plugin(name="rate", consumer=Ref(id="00000000-0000-4000-8000-0000000000b0")))
        w.insert(Plugin(name="disabled", enabled=False))

    store.write(build)
    store.write(lambda w: _consumer_with_key(w, "k"))
    snap = store.snapshot()
    assert snap.version == store.revision() == 2
    assert [s.name for s in snap.services] == ["svc"]
    assert [r.name for r in snap.routes] == ["r1"]
    assert sorted(p.name for p in snap.plugins) == ["key-auth", "rate"]
    assert sorted(c.username or "" for c in snap.consumers) == ["anon", "scoped"]
    assert "key_hash" not in snap.encode().decode()


def test_concurrent_writers_queue_and_each_gets_its_own_revision(store: Store) -> None:
    revisions: list[int] = []

    def write(i: int) -> None:
        _, event = store.write(lambda w: w.insert(Service(name=f"s{i}", host="h")))
        assert event is not None
        revisions.append(event.revision)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(revisions) == list(range(1, 9))
    assert len(store.read(lambda r: r.all(Service))) == 8
