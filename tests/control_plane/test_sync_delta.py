"""Deltas: only changed entities go to a node that runs a recent snapshot; full is the fallback."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from control_plane.publisher import delta_message, snapshot_message
from gateway.entities import Plugin, Ref, Route, Service
from gateway.snapshot import Snapshot
from gateway.snapshot_delta import DeltaError, SnapshotDelta, apply_delta, diff
from lockgate.settings import ClusterTLS
from tests.control_plane.sync_harness import (
    Cluster,
    FakeStore,
    eventually,
    make_node,
    make_tls,
    start_cluster,
)


def routes_config(count: int) -> tuple[Service, list[Route]]:
    service = Service(name="s", host="example.com")
    routes = [
        Route(name=f"r{i}", paths=[f"/r{i}"], service=Ref(id=service.id)) for i in range(count)
    ]
    return service, routes


def test_diff_then_apply_rebuilds_the_new_snapshot() -> None:
    service, routes = routes_config(10)
    old = Snapshot.create(1, (service,), tuple(routes))
    changed = routes[3].model_copy(update={"paths": ["/changed"]})
    added = Route(name="new", paths=["/new"], service=Ref(id=service.id))
    plugin = Plugin(name="key-auth", config={"key_names": ["apikey"]})
    new_routes = [r for r in routes if r.id != routes[5].id]
    new_routes[3] = changed
    new = Snapshot.create(2, (service,), (*new_routes, added), (plugin,))

    delta = diff(old, new)
    assert delta is not None
    assert delta.size == 4  # changed route, deleted route, added route, added plugin
    assert [e.id for e in delta.changes["routes"].upserts] == [changed.id, added.id]
    assert delta.changes["routes"].deletes == (routes[5].id,)
    decoded = SnapshotDelta.decode(delta.encode())
    result = apply_delta(old, decoded)
    assert (result.version, result.hash) == (2, new.hash)
    assert result.routes == new.routes
    assert result.plugins == new.plugins


def test_reordered_entities_need_a_full_snapshot() -> None:
    service, routes = routes_config(3)
    old = Snapshot.create(1, (service,), tuple(routes))
    new = Snapshot.create(2, (service,), (routes[2], routes[0], routes[1]))
    assert diff(old, new) is None


def test_delta_for_another_base_is_refused() -> None:
    service, routes = routes_config(3)
    one = Snapshot.create(1, (service,), tuple(routes[:1]))
    two = Snapshot.create(2, (service,), tuple(routes[:2]))
    three = Snapshot.create(3, (service,), tuple(routes))
    delta = diff(two, three)
    assert delta is not None
    with pytest.raises(DeltaError, match="delta applies to"):
        apply_delta(one, delta)


def test_delta_whose_result_does_not_hash_right_is_refused() -> None:
    service, routes = routes_config(3)
    old = Snapshot.create(1, (service,), tuple(routes[:2]))
    new = Snapshot.create(2, (service,), tuple(routes))
    delta = diff(old, new)
    assert delta is not None
    with pytest.raises(DeltaError, match="hashes to"):
        apply_delta(old, dataclasses.replace(delta, hash="f" * 64))
    with pytest.raises(DeltaError, match="malformed"):
        SnapshotDelta.decode(b'{"changes": {"routes": {"upserts": [{"paths": 1}]}}}')


def test_one_route_change_among_10k_costs_100x_less_on_the_wire() -> None:
    service, routes = routes_config(10_000)
    old = Snapshot.create(1, (service,), tuple(routes))
    routes[1234] = routes[1234].model_copy(update={"paths": ["/moved"]})
    new = Snapshot.create(2, (service,), tuple(routes))
    full = snapshot_message(new).ByteSize()
    delta = delta_message(old, new)
    assert delta is not None and delta.HasField("delta")
    assert full >= 100 * delta.ByteSize(), (full, delta.ByteSize())


@pytest.fixture
def tls(tmp_path: Path) -> ClusterTLS:
    return make_tls(tmp_path)


def seeded_store(count: int = 100) -> FakeStore:
    service, routes = routes_config(count)
    return FakeStore(services=[service], routes=routes)


@pytest.fixture
async def cluster(tls: ClusterTLS) -> AsyncIterator[Cluster]:
    cluster = await start_cluster(tls, seeded_store(), history=4)
    try:
        yield cluster
    finally:
        await cluster.close()


def rename_route(cluster: Cluster, index: int, name: str) -> None:
    routes = cluster.store.routes
    routes[index] = routes[index].model_copy(update={"name": name})
    cluster.write()


async def test_connected_node_gets_only_the_change(cluster: Cluster) -> None:
    node = make_node([cluster.address], cluster.tls).start()
    try:
        await eventually(lambda: cluster.status() == "in_sync")
        rename_route(cluster, 7, "renamed")
        await eventually(lambda: "renamed" in node.routes())
        await eventually(lambda: cluster.node().config_version == cluster.store.version)
        assert node.client.received == {"snapshot": 1, "delta": 1}
        assert node.client.bytes_received["delta"] < node.client.bytes_received["snapshot"] / 5
        assert cluster.status() == "in_sync"
    finally:
        await node.stop()


async def test_node_a_few_versions_behind_gets_a_delta_on_reconnect(cluster: Cluster) -> None:
    node = make_node([cluster.address], cluster.tls).start()
    try:
        await eventually(lambda: cluster.status() == "in_sync")
        await node.pause()
        await eventually(lambda: cluster.status() == "disconnected")
        for i in range(3):
            rename_route(cluster, i, f"offline-{i}")
            await eventually(lambda: cluster.publisher.current.version == cluster.store.version)  # type: ignore[union-attr]
        node.start()
        await eventually(lambda: cluster.status() == "in_sync")
        assert node.routes()[:3] == ["offline-0", "offline-1", "offline-2"]
        assert node.client.received == {"snapshot": 1, "delta": 1}
    finally:
        await node.stop()


async def test_node_too_far_behind_gets_a_full_snapshot(cluster: Cluster) -> None:
    node = make_node([cluster.address], cluster.tls).start()
    try:
        await eventually(lambda: cluster.status() == "in_sync")
        await node.pause()
        for i in range(5):  # more versions than the control plane keeps (4)
            rename_route(cluster, i, f"offline-{i}")
            await eventually(lambda: cluster.publisher.current.version == cluster.store.version)  # type: ignore[union-attr]
        node.start()
        await eventually(lambda: cluster.status() == "in_sync")
        assert node.routes()[4] == "offline-4"
        assert node.client.received == {"snapshot": 2}
    finally:
        await node.stop()


async def test_delta_that_does_not_verify_falls_back_to_a_full_snapshot(
    cluster: Cluster,
) -> None:
    node = make_node([cluster.address], cluster.tls).start()
    try:
        await eventually(lambda: cluster.status() == "in_sync")
        # The node's copy drifted from what its hash says (e.g. a bug): the delta's result
        # cannot hash right, so the node asks for, and applies, a full snapshot.
        drifted = node.client.snapshot
        assert drifted is not None
        node.client.snapshot = dataclasses.replace(drifted, routes=drifted.routes[1:])
        rename_route(cluster, 9, "after-drift")
        await eventually(lambda: "after-drift" in node.routes())
        await eventually(lambda: cluster.status() == "in_sync")
        assert node.client.received == {"snapshot": 2, "delta": 1}
        assert len(node.routes()) == 100
    finally:
        await node.stop()


async def test_rejected_version_keeps_the_old_one_until_a_good_one(cluster: Cluster) -> None:
    node = make_node(
        [cluster.address],
        cluster.tls,
        fail_compile=lambda s: "route 'bad' is invalid" if s.routes[0].name == "bad" else None,
    ).start()
    try:
        await eventually(lambda: cluster.status() == "in_sync")
        rename_route(cluster, 0, "bad")
        await eventually(lambda: cluster.node().last_error == "route 'bad' is invalid")
        status = cluster.node()
        assert status.sync_status == "out_of_sync"
        assert status.config_hash != cluster.nodes.expected_hash
        assert node.routes()[0] == "r0"  # still serving the previous snapshot
        assert node.client.last_error == "route 'bad' is invalid"

        rename_route(cluster, 0, "good")
        await eventually(lambda: cluster.status() == "in_sync")
        assert node.routes()[0] == "good"
        assert cluster.node().last_error is None
        assert node.client.received == {"snapshot": 1, "delta": 2}
    finally:
        await node.stop()
