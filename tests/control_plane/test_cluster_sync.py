"""The cluster protocol over real gRPC with mTLS: snapshots, acks, nacks, invalidations, lookups."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest

from data_plane.control_planes import RemoteCredentials
from gateway.context import ConsumerInfo, CredentialInfo
from gateway.credentials import CredentialLookupError, CredentialMatch
from gateway.entities import Ref, Route, Service
from lockgate import certs
from lockgate.settings import ClusterTLS
from lockgate.v1 import cluster_pb2 as pb
from lockgate.v1 import cluster_pb2_grpc as pb_grpc
from tests.control_plane.sync_harness import Cluster, eventually, make_node, make_tls, start_cluster


@pytest.fixture
def tls(tmp_path: Path) -> ClusterTLS:
    return make_tls(tmp_path)


@pytest.fixture
async def cluster(tls: ClusterTLS) -> AsyncIterator[Cluster]:
    cluster = await start_cluster(tls)
    try:
        yield cluster
    finally:
        await cluster.close()


async def test_node_gets_snapshot_and_acks(cluster: Cluster) -> None:
    service = Service(name="s", host="example.com")
    cluster.store.services.append(service)
    cluster.store.routes.append(Route(name="r", paths=["/r"], service=Ref(id=service.id)))
    cluster.store.version = 2
    cluster.publisher.notify_threadsafe((), ())
    await eventually(
        lambda: cluster.publisher.current is not None and cluster.publisher.current.version == 2
    )
    node = make_node([cluster.address], cluster.tls).start()
    try:
        await eventually(lambda: node.holder.current is not None)
        assert node.holder.current is not None
        assert [r.name for r in node.holder.current.snapshot.routes] == ["r"]
        await eventually(lambda: cluster.nodes.list()[0].sync_status == "in_sync")
        status = cluster.nodes.list()[0]
        assert (status.id, status.hostname, status.ip, status.labels) == (
            "node-1",
            "host-node-1",
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
        await node.stop()
    await eventually(lambda: cluster.nodes.list()[0].sync_status == "disconnected")


async def test_rejected_snapshot_is_reported(cluster: Cluster) -> None:
    node = make_node(
        [cluster.address], cluster.tls, fail_compile=lambda s: "plugin 'x' failed to compile"
    ).start()
    try:
        await eventually(
            lambda: bool(cluster.nodes.list()) and cluster.nodes.list()[0].last_error is not None
        )
        status = cluster.nodes.list()[0]
        assert status.last_error == "plugin 'x' failed to compile"
        assert status.sync_status == "out_of_sync"
        assert node.holder.current is None
    finally:
        await node.stop()


async def test_lookup_and_invalidation(cluster: Cluster) -> None:
    match = CredentialMatch(CredentialInfo("cred-1", "c-1"), ConsumerInfo("c-1", "alice"), None)
    cluster.store.credentials["h1"] = match
    node = make_node([cluster.address], cluster.tls).start()
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
        await node.stop()


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
