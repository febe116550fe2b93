"""The control plane's cluster gRPC service (port 8005, mTLS): config stream and lookups."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import grpc

from control_plane.nodes import NodeRegistry, NodeStatus
from control_plane.publisher import Publisher
from gateway.credentials import CredentialMatch
from lockgate.settings import ClusterTLS
from lockgate.v1 import cluster_pb2 as pb
from lockgate.v1 import cluster_pb2_grpc as pb_grpc

EOF: object = grpc.aio.EOF  # type: ignore[attr-defined]  # missing from grpc-stubs

log = logging.getLogger("lockgate.cp.sync")


class ClusterService(pb_grpc.ClusterServicer):
    def __init__(
        self,
        publisher: Publisher,
        nodes: NodeRegistry,
        lookup: Callable[[str], CredentialMatch | None],
    ) -> None:
        self._publisher = publisher
        self._nodes = nodes
        self._lookup = lookup

    async def Sync(  # type: ignore[override]  # responses go out through context.write
        self,
        request_iterator: object,
        context: grpc.aio.ServicerContext[pb.NodeMessage, pb.ControlMessage],
    ) -> None:
        first = await context.read()
        if first is EOF or first.WhichOneof("msg") != "hello":
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "first message must be Hello")
            return
        hello = first.hello
        if not hello.node_id:
            await context.abort(grpc.StatusCode.INVALID_ARGUMENT, "Hello needs node_id")
            return
        node = self._nodes.connect(
            NodeStatus(
                id=hello.node_id,
                hostname=hello.hostname,
                ip=_peer_ip(context.peer()),
                version=hello.version,
                labels=dict(hello.labels),
                plugins={p.name: p.version for p in hello.plugins},
                config_hash=hello.config_hash,
                config_version=hello.config_version,
            )
        )
        log.info("node %s (%s) connected from %s", node.id, node.hostname, node.ip)
        queue = self._publisher.subscribe()
        reader = asyncio.create_task(self._read(context, node.id))
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if reader in done:
                    getter.cancel()
                    return
                await context.write(getter.result())
        finally:
            reader.cancel()
            self._publisher.unsubscribe(queue)
            self._nodes.disconnect(node.id)
            log.info("node %s disconnected", node.id)

    async def _read(
        self, context: grpc.aio.ServicerContext[pb.NodeMessage, pb.ControlMessage], node_id: str
    ) -> None:
        while True:
            message = await context.read()
            if message is EOF:
                return
            kind = message.WhichOneof("msg")
            if kind == "ack":
                self._nodes.seen(node_id, config_hash=message.ack.hash, version=message.ack.version)
            elif kind == "nack":
                log.warning(
                    "node %s rejected version %d: %s",
                    node_id,
                    message.nack.version,
                    message.nack.error,
                )
                self._nodes.rejected(node_id, message.nack.error)
            elif kind == "heartbeat":
                beat = message.heartbeat
                self._nodes.seen(node_id, config_hash=beat.config_hash, version=beat.config_version)

    async def LookupCredential(
        self,
        request: pb.CredentialLookupRequest,
        context: grpc.aio.ServicerContext[pb.CredentialLookupRequest, pb.CredentialLookupResponse],
    ) -> pb.CredentialLookupResponse:
        match = await asyncio.to_thread(self._lookup, request.key_hash)
        if match is None:
            return pb.CredentialLookupResponse(found=False)
        return pb.CredentialLookupResponse(
            found=True,
            credential_id=match.credential.id,
            consumer=pb.Consumer(
                id=match.consumer.id,
                username=match.consumer.username or "",
                custom_id=match.consumer.custom_id or "",
            ),
            expires_at=match.expires_at or 0.0,
        )


def _peer_ip(peer: str) -> str:
    # "ipv4:127.0.0.1:5000" / "ipv6:[::1]:5000"
    kind, _, rest = peer.partition(":")
    host = rest.rpartition(":")[0]
    return host.strip("[]") if kind in ("ipv4", "ipv6") else peer


def create_server(service: ClusterService, address: str, tls: ClusterTLS) -> grpc.aio.Server:
    """A gRPC server that accepts only clients presenting the cluster certificate."""
    server = grpc.aio.server(options=[("grpc.max_send_message_length", 256 << 20)])
    pb_grpc.add_ClusterServicer_to_server(service, server)
    cert = tls.cert.read_bytes()
    creds = grpc.ssl_server_credentials(
        [(tls.key.read_bytes(), cert)], root_certificates=cert, require_client_auth=True
    )
    server.add_secure_port(address, creds)
    return server
