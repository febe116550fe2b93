"""Contract: create/read/update/delete of every entity kind, uniqueness, references, cascades."""

from __future__ import annotations

import pytest

from control_plane.store import Reader, Store, Writer
from control_plane.store.errors import ForeignKeyViolation, UniqueViolation
from gateway.credentials import hash_key
from gateway.entities import Consumer, Entity, KeyAuthCredential, Plugin, Ref, Route, Service
from tests.control_plane.store.ids import (
    CONSUMER,
    CREDENTIAL,
    MISSING,
    ROUTE,
    SERVICE,
    consumer_with_key,
    inserting,
    service_and_route,
)


def _crud(store: Store, created: Entity, updated: Entity, column: str, value: str) -> None:
    model = type(created)
    store.write(lambda w: w.insert(created))
    assert store.read(lambda r: r.get(model, created.id)) == created
    assert store.read(lambda r: r.find(model, column, value)) == created
    assert store.read(lambda r: r.all(model)) == [created]
    store.write(lambda w: w.update(updated))
    assert store.read(lambda r: r.get(model, created.id)) == updated
    store.write(lambda w: w.delete(model, created.id))
    assert store.read(lambda r: (r.get(model, created.id), r.all(model))) == (None, [])


def test_service_crud(store: Store) -> None:
    created = Service(id=SERVICE, name="svc", host="a.example", tags=["t1"])
    updated = created.model_copy(update={"host": "b.example", "enabled": False})
    _crud(store, created, updated, "name", "svc")


def test_route_crud(store: Store) -> None:
    store.write(lambda w: w.insert(Service(id=SERVICE, name="svc", host="up")))
    created = Route(id=ROUTE, name="r", paths=["/a"], service=Ref(id=SERVICE))
    updated = created.model_copy(update={"paths": ["/b"], "service": None})
    _crud(store, created, updated, "service_id", SERVICE)


def test_consumer_crud(store: Store) -> None:
    created = Consumer(id=CONSUMER, username="alice", custom_id="A-1")
    updated = created.model_copy(update={"username": "alicia"})
    _crud(store, created, updated, "custom_id", "A-1")


def test_credential_crud(store: Store) -> None:
    store.write(lambda w: w.insert(Consumer(id=CONSUMER, username="alice")))
    created = KeyAuthCredential(id=CREDENTIAL, consumer=Ref(id=CONSUMER), key_hash=hash_key("k"))
    updated = created.model_copy(update={"key_hash": hash_key("k2"), "expires_at": 2**40})
    _crud(store, created, updated, "key_hash", hash_key("k"))
    # 64-bit expiry (past 2038) survives the round trip on both databases
    store.write(lambda w: w.insert(updated))
    assert store.read(lambda r: r.find(KeyAuthCredential, "key_hash", hash_key("k2"))) == updated


def test_plugin_crud(store: Store) -> None:
    store.write(service_and_route)
    created = Plugin(
        name="key-auth", instance_name="ka", config={"key_names": ["apikey"]}, route=Ref(id=ROUTE)
    )
    updated = created.model_copy(update={"enabled": False, "config": {"key_names": ["x"]}})
    _crud(store, created, updated, "route_id", ROUTE)


def test_lists_filter_by_column_and_null(store: Store) -> None:
    store.write(service_and_route)
    store.write(lambda w: w.insert(Route(name="loose", paths=["/z"])))
    by_service = store.read(lambda r: r.all(Route, {"service_id": SERVICE}))
    without = store.read(lambda r: r.all(Route, {"service_id": None}))
    assert [r.name for r in by_service] == ["r1"]
    assert [r.name for r in without] == ["loose"]


def test_pages_follow_insertion_order_to_the_end(store: Store) -> None:
    names = [f"s{i:02d}" for i in range(7)]
    store.write(inserting(*(Service(name=n, host="h") for n in names)))
    seen: list[str] = []
    cursor: int | None = None
    for _ in range(10):  # bounded: 3 pages expected

        def read(r: Reader, after: int | None = cursor) -> tuple[list[Service], int | None]:
            return r.page(Service, None, after, 3)

        page, cursor = store.read(read)
        seen.extend(s.name or "" for s in page)
        if cursor is None:
            break
    assert seen == names


@pytest.mark.parametrize(
    ("first", "second", "fields"),
    [
        (Service(name="x", host="a"), Service(name="x", host="b"), {"name": "x"}),
        (Route(name="r", paths=["/"]), Route(name="r", paths=["/b"]), {"name": "r"}),
        (Consumer(username="u"), Consumer(username="u"), {"username": "u"}),
        (Consumer(custom_id="c"), Consumer(custom_id="c"), {"custom_id": "c"}),
        (Plugin(name="p", instance_name="i"), Plugin(name="q", instance_name="i"),
         {"instance_name": "i"}),
        (Plugin(name="p"), Plugin(name="p"),
         {"name": "p", "route": None, "service": None, "consumer": None}),
    ],
)  # fmt: skip
def test_unique_values_are_refused(
    store: Store, first: Entity, second: Entity, fields: dict[str, object]
) -> None:
    store.write(lambda w: w.insert(first))
    with pytest.raises(UniqueViolation) as info:
        store.write(lambda w: w.insert(second))
    assert info.value.fields == fields
    assert store.read(lambda r: r.all(type(first))) == [first]


def test_a_duplicate_key_hash_is_refused(store: Store) -> None:
    store.write(lambda w: consumer_with_key(w, "k"))
    twin = KeyAuthCredential(consumer=Ref(id=CONSUMER), key_hash=hash_key("k"))
    with pytest.raises(UniqueViolation) as info:
        store.write(lambda w: w.insert(twin))
    assert info.value.fields == {"key_hash": hash_key("k")}


def test_updating_into_a_taken_name_is_refused(store: Store) -> None:
    a, b = Service(name="a", host="h"), Service(name="b", host="h")
    store.write(inserting(a, b))
    with pytest.raises(UniqueViolation):
        store.write(lambda w: w.update(b.model_copy(update={"name": "a"})))
    assert store.read(lambda r: r.get(Service, b.id)) == b


@pytest.mark.parametrize(
    ("entity", "field"),
    [
        (Route(paths=["/"], service=Ref(id=MISSING)), "service"),
        (KeyAuthCredential(consumer=Ref(id=MISSING), key_hash="h"), "consumer"),
        (Plugin(name="p", route=Ref(id=MISSING)), "route"),
        (Plugin(name="p", consumer=Ref(id=MISSING)), "consumer"),
    ],
)
def test_references_to_missing_rows_are_refused(store: Store, entity: Entity, field: str) -> None:
    with pytest.raises(ForeignKeyViolation) as info:
        store.write(lambda w: w.insert(entity))
    assert (info.value.field, info.value.ref) == (field, {"id": MISSING})
    assert store.revision() == 0


def test_deleting_a_service_that_routes_use_is_refused(store: Store) -> None:
    store.write(service_and_route)
    with pytest.raises(ForeignKeyViolation) as info:
        store.write(lambda w: w.delete(Service, SERVICE))
    assert str(info.value) == "an existing 'routes' entity references this 'services' entity"
    assert store.read(lambda r: r.get(Service, SERVICE)) is not None


def test_deleting_a_route_then_its_service_removes_their_plugins(store: Store) -> None:
    store.write(service_and_route)
    store.write(
        inserting(
            Plugin(name="on-route", route=Ref(id=ROUTE)),
            Plugin(name="on-service", service=Ref(id=SERVICE)),
            Plugin(name="global"),
        )
    )
    store.write(lambda w: w.delete(Route, ROUTE))
    assert sorted(p.name for p in store.read(lambda r: r.all(Plugin))) == ["global", "on-service"]
    store.write(lambda w: w.delete(Service, SERVICE))
    assert [p.name for p in store.read(lambda r: r.all(Plugin))] == ["global"]


def test_deleting_a_consumer_removes_its_credentials_and_plugins(store: Store) -> None:
    store.write(lambda w: consumer_with_key(w, "k"))
    store.write(lambda w: w.insert(Plugin(name="rate", consumer=Ref(id=CONSUMER))))
    _, event = store.write(lambda w: w.delete(Consumer, CONSUMER))
    assert event is not None
    assert event.key_hashes == {hash_key("k")}
    assert event.consumer_ids == {CONSUMER}
    assert store.read(lambda r: (r.all(KeyAuthCredential), r.all(Plugin))) == ([], [])


def test_a_sync_may_replace_parents_and_children_in_any_order(store: Store) -> None:
    """`cascade=False` deletes: the database checks references only at commit."""
    store.write(service_and_route)

    def replace(w: Writer) -> None:
        w.delete(Service, SERVICE, cascade=False)
        w.insert(Service(id=SERVICE, name="svc2", host="new"))

    store.write(replace)
    assert store.read(lambda r: r.get(Service, SERVICE)).name == "svc2"  # type: ignore[union-attr]
    assert store.read(lambda r: r.get(Route, ROUTE)) is not None


def test_deleting_something_missing_changes_nothing(store: Store) -> None:
    _, event = store.write(lambda w: w.delete(Service, MISSING))
    assert event is None
    assert store.revision() == 0
