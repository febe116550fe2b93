"""Contract: every entity change is audited in its write's transaction, redacted, queryable."""

from __future__ import annotations

import time

import pytest

from control_plane.store import Store, Writer
from gateway.credentials import hash_key
from gateway.entities import Consumer, Plugin, Ref, Service
from tests.control_plane.store.ids import (
    CONSUMER,
    CREDENTIAL,
    SERVICE,
    consumer_with_key,
    inserting,
)

AI_PROXY_CONFIG = {
    "targets": [
        {
            "route_type": "llm/v1/chat",
            "model": {"provider": "openai", "name": "gpt-4o"},
            "auth": {"header_name": "Authorization", "header_value": "Bearer sk-live-123"},
        }
    ]
}


def test_create_update_delete_are_recorded_with_actor_and_request(store: Store) -> None:
    created = Service(id=SERVICE, name="svc", host="a")
    store.write(lambda w: w.insert(created), actor="alice", request_id="req-1")
    updated = created.model_copy(update={"host": "b"})
    store.write(lambda w: w.update(updated), actor="bob", request_id="req-2")
    store.write(lambda w: w.delete(Service, SERVICE))
    entries, next_offset = store.list_audit()
    assert next_offset is None
    assert [(e.action, e.actor, e.request_id) for e in entries] == [
        ("delete", "system", None),
        ("update", "bob", "req-2"),
        ("create", "alice", "req-1"),
    ]
    assert all(
        (e.entity, e.entity_id, e.entity_name) == ("services", SERVICE, "svc") for e in entries
    )
    assert entries[2].diff == {"before": None, "after": created.model_dump(mode="json")}
    assert entries[1].diff["before"]["host"] == "a"
    assert entries[1].diff["after"]["host"] == "b"
    assert entries[0].diff == {"before": updated.model_dump(mode="json"), "after": None}


def test_entries_of_one_write_share_its_time(store: Store) -> None:
    before = time.time()
    store.write(inserting(*(Service(name=f"s{i}", host="h") for i in range(3))))
    entries, _ = store.list_audit()
    assert len({e.at for e in entries}) == 1
    assert before <= entries[0].at <= time.time()
    assert [e.entity_name for e in entries] == ["s2", "s1", "s0"]  # newest first


def test_cascaded_deletes_are_recorded(store: Store) -> None:
    store.write(lambda w: consumer_with_key(w, "k"))
    store.write(lambda w: w.insert(Plugin(name="rate", consumer=Ref(id=CONSUMER))))
    store.write(lambda w: w.delete(Consumer, CONSUMER), actor="ops")
    deleted, _ = store.list_audit(action="delete")
    assert sorted((e.entity, e.entity_name) for e in deleted) == [
        ("consumers", "alice"),
        ("keyauth_credentials", None),
        ("plugins", "rate"),
    ]
    assert {e.actor for e in deleted} == {"ops"}
    assert next(e for e in deleted if e.entity == "keyauth_credentials").entity_id == CREDENTIAL


def test_credential_hashes_never_reach_the_log(store: Store) -> None:
    store.write(lambda w: consumer_with_key(w, "s3cret"))
    entries, _ = store.list_audit(entity="keyauth_credentials")
    assert entries[0].diff["after"]["key_hash"] == "[redacted]"
    assert entries[0].diff["after"]["consumer"] == {"id": CONSUMER}
    assert hash_key("s3cret") not in repr([e.diff for e in store.list_audit()[0]])


def test_plugin_secrets_are_redacted_by_schema_and_by_name(store: Store) -> None:
    config = {**AI_PROXY_CONFIG, "password": "hunter2"}
    store.write(lambda w: w.insert(Plugin(name="ai-proxy-advanced", config=config)))
    (entry,), _ = store.list_audit(entity="plugins")
    after = entry.diff["after"]["config"]
    assert after["targets"][0]["auth"] == {
        "header_name": "Authorization",
        "header_value": "[redacted]",
    }
    assert after["targets"][0]["model"] == {"provider": "openai", "name": "gpt-4o"}
    assert after["password"] == "[redacted]"
    assert "sk-live-123" not in repr(entry.diff)
    # the stored plugin itself keeps the secret: only the log is redacted
    stored = store.read(lambda r: r.all(Plugin))[0]
    assert stored.config["targets"][0]["auth"]["header_value"] == "Bearer sk-live-123"


def test_writes_that_change_nothing_or_fail_are_not_logged(store: Store) -> None:
    store.write(lambda w: w.all(Service), actor="reader")

    def failing(w: Writer) -> None:
        w.insert(Service(name="x", host="h"))
        raise RuntimeError("no")

    with pytest.raises(RuntimeError):
        store.write(failing)
    assert store.list_audit() == ([], None)


def _populate(store: Store) -> None:
    store.write(lambda w: w.insert(Service(id=SERVICE, name="svc", host="h")), actor="alice")
    store.write(lambda w: w.insert(Consumer(id=CONSUMER, username="c")), actor="bob")
    store.write(lambda w: w.delete(Consumer, CONSUMER), actor="alice")


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({"actor": "alice"}, [("delete", "consumers"), ("create", "services")]),
        ({"entity": "consumers"}, [("delete", "consumers"), ("create", "consumers")]),
        ({"action": "create"}, [("create", "consumers"), ("create", "services")]),
        ({"actor": "alice", "entity": "consumers"}, [("delete", "consumers")]),
        ({"actor": "nobody"}, []),
    ],
)
def test_filters_combine(
    store: Store, filters: dict[str, str], expected: list[tuple[str, str]]
) -> None:
    _populate(store)
    entries, _ = store.list_audit(**filters)  # type: ignore[arg-type]
    assert [(e.action, e.entity) for e in entries] == expected


def test_time_window_is_since_inclusive_until_exclusive(store: Store) -> None:
    _populate(store)
    entries, _ = store.list_audit()
    middle = entries[1].at
    assert [e.actor for e in store.list_audit(since=middle)[0]] == ["alice", "bob"]
    assert [e.actor for e in store.list_audit(until=middle)[0]] == ["alice"]
    assert store.list_audit(since=middle, until=middle) == ([], None)


def test_pages_walk_newest_to_oldest_without_gaps(store: Store) -> None:
    for i in range(7):
        store.write(inserting(Service(name=f"s{i}", host="h")))
    names: list[str | None] = []
    offset: str | None = None
    for _ in range(10):  # bounded: 3 pages expected
        page, offset = store.list_audit(size=3, offset=offset)
        assert len(page) <= 3
        names.extend(e.entity_name for e in page)
        if offset is None:
            break
    assert names == [f"s{i}" for i in reversed(range(7))]


def test_a_foreign_offset_is_refused(store: Store) -> None:
    with pytest.raises(ValueError, match="invalid offset"):
        store.list_audit(offset="abc")


def test_prune_deletes_only_older_entries(store: Store) -> None:
    store.write(lambda w: w.insert(Service(name="old", host="h")))
    cutoff = store.list_audit()[0][0].at + 0.0001
    time.sleep(0.01)
    store.write(lambda w: w.insert(Service(name="new", host="h")))
    revision = store.revision()
    assert store.prune_audit(cutoff) == 1
    assert [e.entity_name for e in store.list_audit()[0]] == ["new"]
    assert store.prune_audit(cutoff) == 0
    assert store.revision() == revision


def test_a_page_holds_at_least_one_entry(store: Store) -> None:
    store.write(inserting(Service(name="a", host="h"), Service(name="b", host="h")))
    page, offset = store.list_audit(size=0)
    assert [e.entity_name for e in page] == ["b"]
    assert offset is not None
    assert [e.entity_name for e in store.list_audit(size=0, offset=offset)[0]] == ["a"]
