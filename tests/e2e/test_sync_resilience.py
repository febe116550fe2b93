"""Config sync with real processes: acks from several nodes, a control-plane crash (kill -9) with
traffic flowing, restart from the snapshot cache while the control plane is down, a rejected
snapshot, a frozen node (SIGSTOP), a node without the certificate, two control planes on one
PostgreSQL database with failover."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from lockgate import certs
from tests.e2e.sync_procs import Cluster, ControlPlane, DataPlane, cluster_at, upstream, wait_for
from tests.services.postgres import postgres_server, postgres_url

__all__ = ["postgres_server", "postgres_url"]  # fixtures used below

pytestmark = pytest.mark.e2e

FAST = {"heartbeat_s": 0.5}


@pytest.fixture
def upstream_url() -> Iterator[str]:
    with upstream() as url:
        yield url


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with cluster_at(tmp_path) as cluster:
        yield cluster


def seed(cp: ControlPlane, upstream_url: str) -> None:
    assert cp.api("POST", "/services", json={"name": "up", "url": upstream_url}).status_code == 201
    add_route(cp, "one")


def add_route(cp: ControlPlane, name: str) -> None:
    reply = cp.api("POST", "/services/up/routes", json={"name": name, "paths": [f"/{name}"]})
    assert reply.status_code == 201, reply.text


def serves(dp: DataPlane, path: str) -> bool:
    try:
        return httpx.get(dp.proxy_url + path, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def wait_in_sync(cp: ControlPlane, nodes: list[DataPlane], timeout_s: float = 30) -> None:
    def check() -> bool:
        expected = cp.expected_hash()
        rows = cp.data_planes()
        return all(
            n.status().get("config_hash") == expected
            and rows.get(n.node_id, {}).get("sync_status") == "in_sync"
            for n in nodes
        )

    wait_for(check, timeout_s, "every node in sync", cp, *nodes)


def test_nodes_ack_survive_a_control_plane_crash_and_resync(
    cluster: Cluster, upstream_url: str
) -> None:
    cp = cluster.control_plane()
    seed(cp, upstream_url)
    caches = [cluster.root / f"dp{i}.cache" for i in range(2)]
    nodes = [
        cluster.data_plane("dp0", [cp.cluster_address], options={**FAST, "cache": str(caches[0])}),
        cluster.data_plane("dp1", [cp.cluster_address], options={**FAST, "cache": str(caches[1])}),
        cluster.data_plane("dp2", [cp.cluster_address]),  # plain `lockgate data-plane`
    ]
    wait_in_sync(cp, nodes)

    # Three nodes ack a change.
    add_route(cp, "two")
    wait_in_sync(cp, nodes)
    rows = cp.data_planes()
    for node in nodes:
        assert serves(node, "/two")
        row = rows[node.node_id]
        assert row["hostname"] == node.node_id
        assert row["ip"] == "127.0.0.1"
        assert row["config_hash"] == cp.expected_hash()
        assert row["last_error"] is None

    # kill -9 the control plane: every node keeps serving, no request fails.
    cp.kill()
    failures, sent = 0, 0
    deadline = time.monotonic() + 2.0
    with httpx.Client(timeout=2) as client:
        while time.monotonic() < deadline and sent < 600:
            for node in nodes:
                sent += 1
                if client.get(node.proxy_url + "/two").status_code != 200:
                    failures += 1
    assert sent >= 30 and failures == 0, (sent, failures)

    # A node restarted while the control plane is down serves from its cache.
    nodes[0].stop()
    assert caches[0].exists()
    restarted = cluster.data_plane(
        "dp0", [cp.cluster_address], options={**FAST, "cache": str(caches[0])}
    )
    wait_for(lambda: restarted.ready() == 200, 20, "ready from the cache", restarted)
    assert serves(restarted, "/two") and serves(restarted, "/one")
    nodes[0] = restarted

    # The control plane comes back: nodes reconnect and get the next change.
    cp.start()
    cp.wait_ready()
    add_route(cp, "three")
    wait_in_sync(cp, nodes, timeout_s=40)
    assert all(serves(node, "/three") for node in nodes)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Cluster, ControlPlane]]:
    """One control plane for the tests that each need only their own node."""
    with upstream() as url, cluster_at(tmp_path_factory.mktemp("shared")) as cluster:
        cp = cluster.control_plane()
        seed(cp, url)
        yield cluster, cp


def test_rejected_snapshot_keeps_the_old_one_and_the_api_shows_why(
    shared: tuple[Cluster, ControlPlane],
) -> None:
    cluster, cp = shared
    picky = cluster.data_plane("picky", [cp.cluster_address], options={"reject_route": "bad"})
    wait_in_sync(cp, [picky])
    add_route(cp, "bad")

    def shows_error() -> bool:
        error = cp.data_planes()["picky"]["last_error"]
        return bool(error == "route bad is refused by this node")

    wait_for(shows_error, 20, "the node's error in the API", cp, picky)
    row = cp.data_planes()["picky"]
    assert row["sync_status"] == "out_of_sync"
    assert row["config_hash"] != cp.expected_hash()
    assert serves(picky, "/one")  # the old snapshot still serves
    assert not serves(picky, "/bad")
    assert picky.status()["last_error"] == "route bad is refused by this node"

    # Fixing the config fixes the node.
    assert cp.api("DELETE", "/routes/bad").status_code == 204
    add_route(cp, "good")
    wait_in_sync(cp, [picky])
    assert cp.data_planes()["picky"]["last_error"] is None
    assert serves(picky, "/good")
    picky.stop()


def test_frozen_node_turns_disconnected_and_comes_back(
    shared: tuple[Cluster, ControlPlane],
) -> None:
    cluster, cp = shared
    node = cluster.data_plane("frozen", [cp.cluster_address], options=FAST)
    wait_in_sync(cp, [node])
    node.signal(signal.SIGSTOP)  # its TCP connection stays open
    try:
        started = time.monotonic()
        wait_for(
            lambda: cp.data_planes()["frozen"]["sync_status"] == "disconnected",
            10,
            "disconnected after missed heartbeats",
            cp,
        )
        # 3 intervals of 0.5 s, checked every 0.5 s: well under the 10 s bound.
        assert time.monotonic() - started < 5
    finally:
        node.signal(signal.SIGCONT)
    wait_in_sync(cp, [node])
    node.stop()


def test_node_without_the_cluster_certificate_is_refused(
    shared: tuple[Cluster, ControlPlane],
) -> None:
    cluster, cp = shared
    stranger_dir = cluster.root / "stranger"
    certs.generate(stranger_dir / "cluster.crt", stranger_dir / "cluster.key")
    stranger = cluster.data_plane("stranger", [cp.cluster_address], data_dir=stranger_dir)
    wait_for(
        lambda: stranger.log_path.exists() and "UNAVAILABLE" in stranger.log_path.read_text(),
        20,
        "the stranger's stream to fail",
        stranger,
    )
    assert stranger.alive()
    assert stranger.ready() == 503
    assert "stranger" not in cp.data_planes()
    stranger.stop()


def test_two_control_planes_on_one_postgresql(
    tmp_path: Path, upstream_url: str, postgres_url: str
) -> None:
    with cluster_at(tmp_path, postgres_url) as cluster:
        a = cluster.control_plane("cp-a")
        b = cluster.control_plane("cp-b")
        seed(a, upstream_url)
        on_b = cluster.data_plane("on-b", [b.cluster_address], options=FAST)
        both = cluster.data_plane("both", [a.cluster_address, b.cluster_address], options=FAST)
        wait_in_sync(b, [on_b])
        wait_in_sync(a, [both])

        # A write on A reaches the node connected to B.
        add_route(a, "from-a")
        wait_for(lambda: serves(on_b, "/from-a"), 10, "the write on A served via B", a, b, on_b)

        # A dies: the node that knows both fails over to B, and gets B's writes.
        a.kill()
        wait_for(
            lambda: both.status().get("control_plane") == b.cluster_address,
            20,
            "failover to B",
            b,
            both,
        )
        add_route(b, "from-b")
        # B's snapshot is rebuilt after a short debounce: wait for the change itself, not for
        # "in sync", which the nodes may still be with the snapshot from before the write.
        wait_for(
            lambda: serves(both, "/from-b") and serves(on_b, "/from-b"),
            10,
            "the write on B served by both nodes",
            b,
            on_b,
            both,
        )
        wait_in_sync(b, [on_b, both])
