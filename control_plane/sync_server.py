"""The control plane's cluster gRPC service (port 8005, mTLS): config stream and lookups."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

import grpc

from control_plane.node_session import NodeSession
from control_plane.nodes import MISSED_HEARTBEATS, NodeRegistry, NodeStatus
from control_plane.publisher import Publisher, Update
from gateway.credentials import CredentialMatch
from gateway.plugins import registry
from gateway.snapshot import Snapshot
from lockgate import __version__
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
        *,
        cp_version: str = __version__,
        cp_plugins: Mapping[str, str] | None = None,
        default_heartbeat_s: float = 10.0,
    ) -> None:
        """`cp_plugins` (name -> version) are the plugins this control plane knows (default:
        the built-in registry); `default_heartbeat_s` is assumed for nodes whose Hello does not
        say how often they beat."""
        self._publisher = publisher
        self._nodes = nodes
        self._lookup = lookup
        self._cp_version = cp_version
        self._cp_plugins = (
            dict(cp_plugins)
            if cp_plugins is not None
            else {name: p.version for name, p in registry().items()}
        )
        self._default_heartbeat_s = default_heartbeat_s

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
        interval_s = hello.heartbeat_interval_ms / 1000 or self._default_heartbeat_s
        record = self._nodes.connect(
            NodeStatus(
                id=hello.node_id,
                hostname=hello.hostname,
                ip=_peer_ip(context.peer()),
                version=hello.version,
                labels=dict(hello.labels),
                plugins={p.name: p.version for p in hello.plugins},
                config_hash=hello.config_hash,
                config_version=hello.config_version,
                heartbeat_timeout_s=MISSED_HEARTBEATS * interval_s,
            )
        )
        session = NodeSession(
            record,
            hello,
            self._publisher,
            self._nodes,
            cp_version=self._cp_version,
            cp_plugins=self._cp_plugins,
        )
        log.info("node %s (%s) connected from %s", record.id, record.hostname, record.ip)
        queue = self._publisher.subscribe()
        reader = asyncio.create_task(self._read(context, session, queue))
        getter: asyncio.Future[Update] | None = None
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, reader}, return_when=asyncio.FIRST_COMPLETED)
                if reader in done:
                    return
                update = getter.result()
                if isinstance(update, Snapshot):
                    for message in await session.next_messages():
                        await context.write(message)
                else:
                    await context.write(update)
        finally:
            reader.cancel()
            if getter is not None:
                getter.cancel()
            self._publisher.unsubscribe(queue)
            self._nodes.disconnect(record)
            log.info("node %s disconnected", record.id)

    async def _read(
        self,
        context: grpc.aio.ServicerContext[pb.NodeMessage, pb.ControlMessage],
        session: NodeSession,
        queue: asyncio.Queue[Update],
    ) -> None:
        while True:
            message = await context.read()
            if message is EOF:
                return
            if session.on_message(message) and self._publisher.current is not None:
                queue.put_nowait(self._publisher.current)  # re-evaluate: send a full snapshot

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
    server = grpc.aio.server(
        options=[
            ("grpc.max_send_message_length", 256 << 20),
            # Data planes ping every heartbeat interval to notice a frozen control plane
            # (data_plane.control_planes.open_channel), also while no config is sent: never
            # answer that with a "too many pings" GOAWAY.
            ("grpc.http2.min_recv_ping_interval_without_data_ms", 100),
            ("grpc.http2.max_ping_strikes", 0),
        ]
    )
    pb_grpc.add_ClusterServicer_to_server(service, server)
    cert = tls.cert.read_bytes()
    creds = grpc.ssl_server_credentials(
        [(tls.key.read_bytes(), cert)], root_certificates=cert, require_client_auth=True
    )
    server.add_secure_port(address, creds)
    return server
