"""Compatibility: a node that cannot run the config is marked incompatible, with the reason, and
gets no config (but stays connected) until it can."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from control_plane.compatibility import check, check_version
from gateway.entities import Plugin, Ref, Route, Service
from gateway.snapshot import Snapshot
from lockgate.settings import ClusterTLS
from tests.control_plane.sync_harness import (
    Cluster,
    FakeStore,
    eventually,
    make_node,
    make_tls,
    start_cluster,
)

CP_PLUGINS = {"key-auth": "1.2.0", "pre-function": "1.0.0"}


@pytest.mark.parametrize(
    ("node", "cp", "ok"),
    [
        ("0.1.0", "0.1.0", True),
        ("0.1.7", "0.1.0", True),  # patch differs
        ("0.0.9", "0.1.0", True),  # older minor
        ("0.2.0", "0.1.0", False),  # newer minor
        ("1.1.0", "0.1.0", False),  # other major
        ("garbage", "0.1.0", False),
    ],
)
def test_version_rules(node: str, cp: str, ok: bool) -> None:
    assert (check_version(node, cp) is None) is ok


def test_plugin_rules() -> None:
    snapshot = Snapshot.create(1, plugins=(Plugin(name="key-auth", config={}),))

    def reason(node_plugins: dict[str, str]) -> str | None:
        return check(
            snapshot,
            node_version="0.1.0",
            node_plugins=node_plugins,
            cp_version="0.1.0",
            cp_plugins=CP_PLUGINS,
        )

    assert reason({"key-auth": "1.2.0"}) is None
    assert reason({"key-auth": "1.0.3"}) is None  # older minor is fine
    # A plugin installed on the CP but unused by the config is not required.
    assert reason({"key-auth": "1.2.0", "other": "9.0.0"}) is None
    assert reason({}) == (
        "plugins used by the configuration are not installed on the node: ['key-auth']"
    )
    assert reason({"key-auth": "2.0.0"}) == (
        "plugin key-auth version 2.0.0 on the node is incompatible with version 1.2.0 on "
        "the control plane"
    )
    assert reason({"key-auth": "1.3.0"}) is not None


@pytest.fixture
def tls(tmp_path: Path) -> ClusterTLS:
    return make_tls(tmp_path)


@pytest.fixture
async def cluster(tls: ClusterTLS) -> AsyncIterator[Cluster]:
    service = Service(name="s", host="example.com")
    store = FakeStore(
        services=[service],
        routes=[Route(name="r", paths=["/r"], service=Ref(id=service.id))],
        plugins=[Plugin(name="key-auth", config={"key_names": ["apikey"]})],
    )
    cluster = await start_cluster(tls, store, cp_plugins=CP_PLUGINS)
    try:
        yield cluster
    finally:
        await cluster.close()


async def test_node_missing_a_used_plugin_gets_no_config_until_compatible(
    cluster: Cluster,
) -> None:
    node = make_node([cluster.address], cluster.tls, plugins={"pre-function": "1.0.0"}).start()
    try:
        await eventually(lambda: cluster.status() == "incompatible")
        status = cluster.node()
        assert status.last_error == (
            "plugins used by the configuration are not installed on the node: ['key-auth']"
        )
        assert status.as_json()["compatibility_status"] == "incompatible"
        # The node is told why and keeps its stream: heartbeats keep it from "disconnected".
        await eventually(lambda: bool(node.client.incompatible))
        assert "key-auth" in node.client.incompatible
        assert node.holder.current is None
        assert node.client.received == {"incompatible": 1}

        # The config stops using the plugin: the node is compatible again and gets it.
        cluster.store.plugins.clear()
        cluster.write()
        await eventually(lambda: cluster.status() == "in_sync")
        assert node.routes() == ["r"]
        assert cluster.node().last_error is None
        assert node.client.incompatible == ""
    finally:
        await node.stop()


async def test_node_with_another_major_version_is_incompatible(cluster: Cluster) -> None:
    node = make_node([cluster.address], cluster.tls, version="1.0.0").start()
    try:
        await eventually(lambda: cluster.status() == "incompatible")
        assert cluster.node().last_error == (
            "data plane version 1.0.0 is incompatible with control plane version 0.1.0 "
            "(major versions differ)"
        )
        # Still connected well after the heartbeat timeout (3 x 0.1 s), and still no config.
        await asyncio.sleep(0.6)
        assert cluster.status() == "incompatible"
        assert node.holder.current is None
    finally:
        await node.stop()
