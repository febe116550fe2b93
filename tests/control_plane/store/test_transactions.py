"""Contract: one transaction per write, one revision per changing write, serialized writers."""

from __future__ import annotations

import threading

import pytest

from control_plane.store import Store, Writer
from control_plane.store.errors import UniqueViolation
from gateway.entities import Consumer, Plugin, Ref, Route, Service
from tests.control_plane.store.ids import CONSUMER, ROUTE, SERVICE, service_and_route

THREADS = 8
JOIN_TIMEOUT_S = 60.0


def test_every_changing_write_bumps_the_revision_once(store: Store) -> None:
    assert store.revision() == 0
    _, first = store.write(service_and_route)  # two inserts, one revision
    _, second = store.write(lambda w: w.insert(Service(name="other", host="h")))
    assert first is not None and second is not None
    assert (first.revision, second.revision) == (1, 2)
    assert store.revision() == 2


def test_a_write_that_changes_nothing_keeps_the_revision(store: Store) -> None:
    store.write(service_and_route)
    result, event = store.write(lambda w: w.all(Service))
    assert event is None
    assert [s.name for s in result] == ["svc"]
    assert store.revision() == 1


def test_a_write_sees_its_own_changes_and_the_new_revision_after(store: Store) -> None:
    def write(w: Writer) -> tuple[int, int]:
        w.insert(Service(id=SERVICE, name="svc", host="h"))
        return w.revision(), len(w.all(Service))

    result, event = store.write(write)
    assert result == (0, 1)  # inside: the old revision, the new row
    assert event is not None and event.revision == 1


@pytest.mark.parametrize("error", [UniqueViolation({"name": "x"}), RuntimeError("boom")])
def test_a_failing_write_leaves_nothing_behind(store: Store, error: Exception) -> None:
    def half(w: Writer) -> None:
        service_and_route(w)
        w.insert(Consumer(id=CONSUMER, username="alice"))
        raise error

    with pytest.raises(type(error)):
        store.write(half)
    assert store.read(lambda r: (r.all(Service), r.all(Route), r.all(Consumer))) == ([], [], [])
    assert store.revision() == 0
    assert store.list_audit() == ([], None)
    store.write(service_and_route)  # the same ids are free afterwards
    assert store.revision() == 1


def test_snapshot_holds_enabled_config_and_only_referenced_consumers(store: Store) -> None:
    def build(w: Writer) -> None:
        service_and_route(w)
        w.insert(Service(name="off", host="x", enabled=False))
        w.insert(Consumer(id="00000000-0000-4000-8000-0000000000a0", username="anon"))
        w.insert(Consumer(username="unreferenced"))
        w.insert(Consumer(id=CONSUMER, username="scoped"))
        w.insert(Plugin(name="key-auth", config={"anonymous": "anon"}))
        w.insert(Plugin(name="rate", consumer=Ref(id=CONSUMER)))
        w.insert(Plugin(name="on-route", route=Ref(id=ROUTE)))
        w.insert(Plugin(name="disabled", enabled=False))

    store.write(build)
    snap = store.snapshot()
    assert snap.version == store.revision() == 1
    assert [s.name for s in snap.services] == ["svc"]
    assert [r.name for r in snap.routes] == ["r1"]
    assert sorted(p.name for p in snap.plugins) == ["key-auth", "on-route", "rate"]
    assert sorted(c.username or "" for c in snap.consumers) == ["anon", "scoped"]


def _run_threads(target: object, count: int) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(count)]  # type: ignore[arg-type]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_TIMEOUT_S)
    assert not any(thread.is_alive() for thread in threads)


def test_concurrent_writers_each_get_their_own_revision(store: Store) -> None:
    revisions: list[int] = []
    start = threading.Barrier(THREADS, timeout=JOIN_TIMEOUT_S)

    def write(i: int) -> None:
        start.wait()
        _, event = store.write(lambda w: w.insert(Service(name=f"s{i}", host="h")))
        assert event is not None
        revisions.append(event.revision)

    _run_threads(write, THREADS)
    assert sorted(revisions) == list(range(1, THREADS + 1))
    assert len(store.read(lambda r: r.all(Service))) == THREADS


def test_concurrent_writers_see_each_others_commits(store: Store) -> None:
    """Writers are serialized: of N racing to create the same name, one wins and the others get
    a clean UniqueViolation from the store's own check (not a database error at commit)."""
    outcomes: list[str] = []
    start = threading.Barrier(THREADS, timeout=JOIN_TIMEOUT_S)

    def write(i: int) -> None:
        start.wait()
        try:
            store.write(lambda w: w.insert(Service(name="same", host=f"h{i}")))
            outcomes.append("created")
        except UniqueViolation:
            outcomes.append("unique")

    _run_threads(write, THREADS)
    assert sorted(outcomes) == ["created"] + ["unique"] * (THREADS - 1)
    assert store.revision() == 1


def test_read_modify_write_under_contention_loses_no_update(store: Store) -> None:
    """Each writer reads a counter (kept in a service's retries) and writes it + 1."""
    store.write(lambda w: w.insert(Service(id=SERVICE, name="counter", host="h", retries=0)))
    start = threading.Barrier(THREADS, timeout=JOIN_TIMEOUT_S)

    def increment(w: Writer) -> None:
        current = w.get(Service, SERVICE)
        assert current is not None
        w.update(current.model_copy(update={"retries": current.retries + 1}))

    def write(_: int) -> None:
        start.wait()
        store.write(increment)

    _run_threads(write, THREADS)
    final = store.read(lambda r: r.get(Service, SERVICE))
    assert final is not None and final.retries == THREADS
    assert store.revision() == THREADS + 1
