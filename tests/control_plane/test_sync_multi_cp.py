"""Several control planes on one database: a write on one reaches nodes connected to another
(the store's revision is polled), credential invalidations too, and a node fails over between
control-plane addresses. Run on one SQLite file and on one PostgreSQL database."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest

from control_plane.nodes import NodeRegistry
from control_plane.publisher import Publisher
from control_plane.store import ChangeEvent, Store, Writer, open_store
from control_plane.sync_server import ClusterService, create_server
from gateway.credentials import hash_key
from gateway.entities import Consumer, KeyAuthCredential, Ref, Route, Service
from lockgate.settings import ClusterTLS
from tests.control_plane.sync_harness import eventually, free_port, make_node, make_tls

SERVICE_ID = "00000000-0000-4000-8000-000000000001"


@dataclass
class ControlPlane:
    store: Store
    publisher: Publisher
    nodes: NodeRegistry
    address: str
    server: grpc.aio.Server
    watcher: asyncio.Task[None]

    def write(self, fn: Callable[[Writer], object]) -> None:
        """A write through this control plane (what its Admin API does)."""
        _, event = self.store.write(fn)
        assert isinstance(event, ChangeEvent)
        self.publisher.notify_threadsafe(event.key_hashes, event.consumer_ids, event.revision)

    async def close(self) -> None:
        self.watcher.cancel()
        await asyncio.gather(self.watcher, return_exceptions=True)
        await self.server.stop(grace=None)
        await self.publisher.close()
        self.store.close()


async def start_control_plane(url: str, tls: ClusterTLS) -> ControlPlane:
    store = open_store(url)
    nodes = NodeRegistry()
    publisher = Publisher(store.snapshot, on_snapshot=lambda s: nodes.set_expected(s.hash))
    await publisher.start()
    address = f"127.0.0.1:{free_port()}"
    server = create_server(ClusterService(publisher, nodes, store.lookup_credential), address, tls)
    await server.start()
    watcher = asyncio.create_task(publisher.watch_revision(store.revision, 0.1))
    return ControlPlane(store, publisher, nodes, address, server, watcher)


@pytest.fixture
def tls(tmp_path: Path) -> ClusterTLS:
    return make_tls(tmp_path)


@pytest.fixture
async def two(database_url: str, tls: ClusterTLS) -> AsyncIterator[list[ControlPlane]]:
    seed = open_store(database_url)
    seed.write(lambda w: w.insert(Service(id=SERVICE_ID, name="s", host="example.com")))
    seed.close()
    planes = [await start_control_plane(database_url, tls) for _ in range(2)]
    try:
        yield planes
    finally:
        for plane in planes:
            await plane.close()


def add_route(name: str) -> Callable[[Writer], None]:
    return lambda w: w.insert(Route(name=name, paths=[f"/{name}"], service=Ref(id=SERVICE_ID)))


async def test_a_write_on_one_control_plane_reaches_nodes_of_the_other(
    two: list[ControlPlane], tls: ClusterTLS
) -> None:
    a, b = two
    node = make_node([b.address], tls).start()
    try:
        await eventually(
            lambda: b.nodes.list() != [] and b.nodes.list()[0].sync_status == "in_sync"
        )
        a.write(add_route("from-a"))
        await eventually(lambda: "from-a" in node.routes())
        await eventually(lambda: b.nodes.list()[0].sync_status == "in_sync")
        assert a.publisher.current is not None and b.publisher.current is not None
        assert a.publisher.current.hash == b.publisher.current.hash
    finally:
        await node.stop()


async def test_credential_changes_on_one_control_plane_reach_caches_behind_the_other(
    two: list[ControlPlane], tls: ClusterTLS
) -> None:
    a, b = two
    consumer = Consumer(username="alice")
    credential = KeyAuthCredential(consumer=Ref(id=consumer.id), key_hash=hash_key("k1"))

    def seed(w: Writer) -> None:
        w.insert(consumer)
        w.insert(credential)

    a.write(seed)
    node = make_node([b.address], tls).start()
    try:
        await eventually(lambda: node.holder.current is not None)
        found = await node.credentials.lookup(hash_key("k1"))
        assert found is not None and found.consumer.username == "alice"
        a.write(lambda w: w.delete(KeyAuthCredential, credential.id))
        await eventually(lambda: len(node.credentials) == 0)
        assert await node.credentials.lookup(hash_key("k1")) is None
    finally:
        await node.stop()


async def test_node_fails_over_to_the_next_control_plane(
    two: list[ControlPlane], tls: ClusterTLS
) -> None:
    a, b = two
    node = make_node([a.address, b.address], tls).start()
    try:
        await eventually(lambda: node.client.connected_to == a.address)
        await a.server.stop(grace=None)
        await eventually(lambda: node.client.connected_to == b.address)
        b.write(add_route("after-failover"))
        await eventually(lambda: "after-failover" in node.routes())
        # The node served throughout (it never lost its runtime), and the control plane it
        # failed over to records it in sync once its acknowledgement of the change arrives
        # (the node applies the change before it acknowledges it).
        await eventually(lambda: b.nodes.list()[0].sync_status == "in_sync")
    finally:
        await node.stop()
