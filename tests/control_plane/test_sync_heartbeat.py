"""Heartbeats: a node whose stream stays open but that stops talking is marked disconnected after
three missed heartbeat intervals, and comes back when it talks again."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from control_plane.nodes import NodeRegistry, NodeStatus
from data_plane.control_planes import open_channel
from lockgate.settings import ClusterTLS
from lockgate.v1 import cluster_pb2 as pb
from lockgate.v1 import cluster_pb2_grpc as pb_grpc
from tests.control_plane.sync_harness import Cluster, eventually, make_tls, start_cluster


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    cluster = await start_cluster(make_tls(tmp_path))
    try:
        yield cluster
    finally:
        await cluster.close()


def test_registry_expires_silent_nodes() -> None:
    nodes = NodeRegistry()
    record = nodes.connect(
        NodeStatus(
            id="n",
            hostname="h",
            ip="1.2.3.4",
            version="0.1.0",
            labels={},
            plugins={},
            heartbeat_timeout_s=15.0,
        )
    )
    start = record.last_seen_mono
    assert nodes.expire(start + 14.9) == []
    assert nodes.list()[0].sync_status == "out_of_sync"
    assert nodes.expire(start + 15.1) == ["n"]
    assert nodes.list()[0].sync_status == "disconnected"
    nodes.seen("n")
    assert nodes.list()[0].sync_status == "out_of_sync"


async def test_open_but_silent_stream_turns_disconnected(cluster: Cluster) -> None:
    tls: ClusterTLS = cluster.tls
    channel = open_channel(cluster.address, tls)
    call: Any = pb_grpc.ClusterStub(channel).Sync()  # type: ignore[call-arg]
    try:
        await call.write(
            pb.NodeMessage(
                hello=pb.Hello(
                    node_id="node-1", hostname="h", version="0.1.0", heartbeat_interval_ms=100
                )
            )
        )
        first = await call.read()
        assert first.WhichOneof("msg") == "snapshot"
        snap = first.snapshot
        await call.write(pb.NodeMessage(ack=pb.Ack(version=snap.version, hash=snap.hash)))
        await eventually(lambda: cluster.status() == "in_sync")
        assert cluster.node().heartbeat_timeout_s == pytest.approx(0.3)
        # Silence, with the stream still open: disconnected after ~3 intervals.
        await eventually(lambda: cluster.status() == "disconnected", timeout=2)
        # It speaks again: back in sync.
        await call.write(
            pb.NodeMessage(heartbeat=pb.Heartbeat(config_hash=snap.hash, config_version=1))
        )
        await eventually(lambda: cluster.status() == "in_sync")
    finally:
        call.cancel()
        await channel.close(grace=None)
