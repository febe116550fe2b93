"""An in-process cluster for sync tests: a real gRPC server with mTLS on a free port, a fake store,
and data-plane sync clients (the real `SyncClient`) with their runtimes."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from control_plane.nodes import NodeRegistry, NodeStatus
from control_plane.publisher import Publisher
from control_plane.sync_server import ClusterService, create_server
from data_plane.cluster_client import NodeInfo, SyncClient
from data_plane.control_planes import ControlPlanes, RemoteCredentials, open_channel
from data_plane.credentials import CachedCredentials
from data_plane.runtime import Runtime, RuntimeHolder, compile_runtime
from data_plane.snapshot_cache import SnapshotCache
from gateway.credentials import CredentialMatch, InMemoryCredentials
from gateway.entities import Plugin, Route, Service
from gateway.plugins import registry
from gateway.snapshot import Snapshot
from lockgate import certs
from lockgate.settings import ClusterTLS


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_tls(folder: Path) -> ClusterTLS:
    pair = ClusterTLS(folder / "cluster.crt", folder / "cluster.key")
    certs.generate(pair.cert, pair.key)
    return pair


@dataclass
class FakeStore:
    version: int = 1
    services: list[Service] = field(default_factory=list)
    routes: list[Route] = field(default_factory=list)
    plugins: list[Plugin] = field(default_factory=list)
    credentials: dict[str, CredentialMatch] = field(default_factory=dict)

    def snapshot(self) -> Snapshot:
        return Snapshot.create(
            self.version, tuple(self.services), tuple(self.routes), tuple(self.plugins)
        )

    def lookup(self, key_hash: str) -> CredentialMatch | None:
        return self.credentials.get(key_hash)


@dataclass
class Cluster:
    store: FakeStore
    publisher: Publisher
    nodes: NodeRegistry
    address: str
    tls: ClusterTLS
    server: grpc.aio.Server
    watchers: list[asyncio.Task[None]] = field(default_factory=list)

    async def close(self) -> None:
        for task in self.watchers:
            task.cancel()
        await asyncio.gather(*self.watchers, return_exceptions=True)
        await self.server.stop(grace=None)

    def write(self) -> None:
        """A committed write: bump the version and notify the publisher."""
        self.store.version += 1
        self.publisher.notify_threadsafe((), (), self.store.version)

    def status(self, node_id: str = "node-1") -> str:
        """The node's sync status, or "absent" before it first connected."""
        found = self.nodes.get(node_id)
        return "absent" if found is None else found.sync_status

    def node(self, node_id: str = "node-1") -> NodeStatus:
        found = self.nodes.get(node_id)
        assert found is not None, f"no node {node_id}"
        return found


async def start_cluster(
    tls: ClusterTLS,
    store: FakeStore | None = None,
    *,
    cp_plugins: Mapping[str, str] | None = None,
    address: str | None = None,
    history: int = 16,
) -> Cluster:
    store = store or FakeStore()
    nodes = NodeRegistry()
    publisher = Publisher(
        store.snapshot, history=history, on_snapshot=lambda s: nodes.set_expected(s.hash)
    )
    await publisher.start()
    address = address or f"127.0.0.1:{free_port()}"
    service = ClusterService(publisher, nodes, store.lookup, cp_plugins=cp_plugins)
    server = create_server(service, address, tls)
    await server.start()
    watchers = [asyncio.create_task(nodes.watch_heartbeats(0.05))]
    return Cluster(store, publisher, nodes, address, tls, server, watchers)


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
    planes: ControlPlanes
    task: asyncio.Task[None] | None = None
    compiled: list[int] = field(default_factory=list)

    def routes(self) -> list[str]:
        current = self.holder.current
        return [] if current is None else [r.name or "" for r in current.snapshot.routes]

    def start(self) -> Node:
        self.task = asyncio.create_task(self.client.run())
        return self

    async def pause(self) -> None:
        """Stop the sync loop (the stream closes); `start()` resumes with the same state."""
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)
            self.task = None

    async def stop(self) -> None:
        await self.pause()
        await self.client.flush_cache()
        await self.planes.close()


def make_node(
    addresses: list[str],
    tls: ClusterTLS,
    *,
    node_id: str = "node-1",
    version: str = "0.1.0",
    plugins: Mapping[str, str] | None = None,
    fail_compile: Callable[[Snapshot], str | None] = lambda s: None,
    cache: Path | None = None,
    heartbeat_s: float = 0.1,
) -> Node:
    """A node, not started yet (`.start()` runs it). `fail_compile` returns an error message
    for snapshots the node must reject."""
    planes = ControlPlanes([(a, open_channel(a, tls)) for a in addresses])
    credentials = CachedCredentials(RemoteCredentials(planes))
    holder = RuntimeHolder()
    compiled: list[int] = []

    def compile_snapshot(snapshot: Snapshot) -> Runtime:
        error = fail_compile(snapshot)
        if error is not None:
            raise ValueError(error)
        compiled.append(snapshot.version)
        return compile_runtime(snapshot, registry(), InMemoryCredentials())

    info = NodeInfo(
        node_id,
        f"host-{node_id}",
        version,
        dict(plugins) if plugins is not None else {n: p.version for n, p in registry().items()},
        {"zone": "a"},
    )
    client = SyncClient(
        planes,
        info,
        compile_snapshot,
        holder.swap,
        credentials,
        heartbeat_s=heartbeat_s,
        backoff_max_s=0.5,
        cache=SnapshotCache(cache) if cache is not None else None,
    )
    return Node(holder, client, credentials, planes, None, compiled)
