"""The cluster protocol over real gRPC with mTLS: snapshots, acks, nacks, invalidations, lookups."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest

from control_plane.nodes import NodeRegistry
from control_plane.publisher import Publisher
from control_plane.sync_server import ClusterService, create_server
from data_plane.cluster_client import NodeInfo, RemoteCredentials, SyncClient, open_channel
from data_plane.credentials import CachedCredentials
from data_plane.runtime import Runtime, RuntimeHolder, compile_runtime
from gateway.context import ConsumerInfo, CredentialInfo
from gateway.credentials import CredentialLookupError, CredentialMatch, InMemoryCredentials
from gateway.entities import Ref, Route, Service
from gateway.plugins import registry
from gateway.snapshot import Snapshot
from lockgate import certs
from lockgate.settings import ClusterTLS
from lockgate.v1 import cluster_pb2 as pb
from lockgate.v1 import cluster_pb2_grpc as pb_grpc


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class FakeStore:
    version: int = 1
    services: list[Service] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    credentials: dict[str, CredentialMatch] = field(default_factory=dict)

    def snapshot(self) -> Snapshot:
        return Snapshot.create(self.version, tuple(self.services), tuple(self.routes))

    def lookup(self, key_hash: str) -> CredentialMatch | None:
        return self.credentials.get(key_hash)


@dataclass
class Cluster:
    store: FakeStore
    publisher: Publisher
    nodes: NodeRegistry
    address: str
    tls: ClusterTLS


@pytest.fixture
def tls(tmp_path: Path) -> ClusterTLS:
    pair = ClusterTLS(tmp_path / "cluster.crt", tmp_path / "cluster.key")
    certs.generate(pair.cert, pair.key)
    return pair


@pytest.fixture
async def cluster(tls: ClusterTLS) -> AsyncIterator[Cluster]:
    store = FakeStore()
    nodes = NodeRegistry()
    publisher = Publisher(store.snapshot, on_snapshot=lambda s: nodes.set_expected(s.hash))
    await publisher.start()
    address = f"127.0.0.1:{free_port()}"
    server = create_server(ClusterService(publisher, nodes, store.lookup), address, tls)
    await server.start()
    try:
        yield Cluster(store, publisher, nodes, address, tls)
    finally:
        await server.stop(grace=None)


def node_info(node_id: str = "node-1") -> NodeInfo:
    return NodeInfo(node_id, "host-1", "0.1.0", {"key-auth": "1.0.0"}, {"zone": "a"})


async def eventually(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.02)


@dataclass
class Node:
    holder: RuntimeHolder
    client: SyncClient
    credentials: CachedCredentials
    task: asyncio.Task[None]
    channel: grpc.aio.Channel


async def start_node(cluster: Cluster, compile_ok: bool = True) -> Node:
    channel = open_channel(cluster.address, cluster.tls)
    credentials = CachedCredentials(RemoteCredentials(channel))
    holder = RuntimeHolder()

    def compile_snapshot(snapshot: Snapshot) -> Runtime:
        if not compile_ok:
            raise ValueError("plugin 'x' failed to compile")
        return compile_runtime(snapshot, registry(), InMemoryCredentials())

    client = SyncClient(
        channel, node_info(), compile_snapshot, holder.swap, credentials, heartbeat_s=0.1
    )
    return Node(holder, client, credentials, asyncio.create_task(client.run()), channel)


async def stop_node(node: Node) -> None:
    node.task.cancel()
    await asyncio.gather(node.task, return_exceptions=True)
    await node.channel.close(grace=None)


async def test_node_gets_snapshot_and_acks(cluster: Cluster) -> None:
    service = Service(name="s", host="example.com")
    cluster.store.services.append(service)
    cluster.store.routes.append(Route(name="r", paths=["/r"], service=Ref(id=service.id)))
    cluster.store.version = 2
    cluster.publisher.notify_threadsafe((), ())
    await eventually(
        lambda: cluster.publisher.current is not None and cluster.publisher.current.version == 2
    )
    node = await start_node(cluster)
    try:
        await eventually(lambda: node.holder.current is not None)
        assert node.holder.current is not None
        assert [r.name for r in node.holder.current.snapshot.routes] == ["r"]
        await eventually(lambda: cluster.nodes.list()[0].sync_status == "in_sync")
        status = cluster.nodes.list()[0]
        assert (status.id, status.hostname, status.ip, status.labels) == (
            "node-1",
            "host-1",
            "127.0.0.1",
            {"zone": "a"},
        )
        assert status.config_version == 2

        # A change is pushed to the connected node.
        cluster.store.routes.append(Route(name="r2", paths=["/r2"], service=Ref(id=service.id)))
        cluster.store.version = 3
        cluster.publisher.notify_threadsafe((), ())
        await eventually(
            lambda: node.holder.current is not None and node.holder.current.snapshot.version == 3
        )
        await eventually(lambda: cluster.nodes.list()[0].config_version == 3)
    finally:
        await stop_node(node)
    await eventually(lambda: cluster.nodes.list()[0].sync_status == "disconnected")


async def test_rejected_snapshot_is_reported(cluster: Cluster) -> None:
    node = await start_node(cluster, compile_ok=False)
    try:
        await eventually(
            lambda: bool(cluster.nodes.list()) and cluster.nodes.list()[0].last_error is not None
        )
        status = cluster.nodes.list()[0]
        assert status.last_error == "plugin 'x' failed to compile"
        assert status.sync_status == "out_of_sync"
        assert node.holder.current is None
    finally:
        await stop_node(node)


async def test_lookup_and_invalidation(cluster: Cluster) -> None:
    match = CredentialMatch(CredentialInfo("cred-1", "c-1"), ConsumerInfo("c-1", "alice"), None)
    cluster.store.credentials["h1"] = match
    node = await start_node(cluster)
    try:
        await eventually(lambda: node.holder.current is not None)
        assert await node.credentials.lookup("h1") == match
        assert await node.credentials.lookup("unknown") is None
        # The credential is deleted on the CP: the pushed invalidation drops the cached answer.
        del cluster.store.credentials["h1"]
        assert await node.credentials.lookup("h1") == match  # still cached
        cluster.publisher.notify_threadsafe(["h1"], [])
        await eventually(lambda: len(node.credentials) == 1)  # only the negative entry is left
        assert await node.credentials.lookup("h1") is None
    finally:
        await stop_node(node)


async def test_client_without_the_cluster_certificate_is_refused(
    cluster: Cluster, tmp_path: Path
) -> None:
    other = ClusterTLS(tmp_path / "other.crt", tmp_path / "other.key")
    certs.generate(other.cert, other.key)
    # A client with its own (different) certificate, trusting the real CP certificate.
    creds = grpc.ssl_channel_credentials(
        root_certificates=cluster.tls.cert.read_bytes(),
        private_key=other.key.read_bytes(),
        certificate_chain=other.cert.read_bytes(),
    )
    async with grpc.aio.secure_channel(
        cluster.address, creds, options=[("grpc.ssl_target_name_override", certs.SERVER_NAME)]
    ) as channel:
        stub = pb_grpc.ClusterStub(channel)
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await stub.LookupCredential(pb.CredentialLookupRequest(key_hash="x"), timeout=5)
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    # And with no client certificate at all.
    creds = grpc.ssl_channel_credentials(root_certificates=cluster.tls.cert.read_bytes())
    async with grpc.aio.secure_channel(
        cluster.address, creds, options=[("grpc.ssl_target_name_override", certs.SERVER_NAME)]
    ) as channel:
        with pytest.raises(CredentialLookupError):
            await RemoteCredentials(channel).lookup("x")
