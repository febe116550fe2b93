"""The data plane's side of the cluster protocol: config stream and credential lookups (gRPC,
mTLS with the cluster certificate).

`SyncClient.run()` keeps a stream open forever: Hello, then for every Snapshot compile it and Ack
(swap the runtime) or Nack (keep serving the last good one); Invalidations clear the credential
cache; Heartbeats carry the running hash. On any failure it reconnects with jittered exponential
backoff, and the node keeps serving its last snapshot meanwhile.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from data_plane.credentials import CachedCredentials
from data_plane.runtime import Runtime
from gateway.context import ConsumerInfo, CredentialInfo
from gateway.credentials import CredentialLookupError, CredentialMatch
from gateway.snapshot import Snapshot
from lockgate.certs import SERVER_NAME
from lockgate.settings import ClusterTLS
from lockgate.v1 import cluster_pb2 as pb
from lockgate.v1 import cluster_pb2_grpc as pb_grpc

EOF: object = grpc.aio.EOF  # type: ignore[attr-defined]  # missing from grpc-stubs

log = logging.getLogger("lockgate.dp.sync")


def open_channel(address: str, tls: ClusterTLS) -> grpc.aio.Channel:
    cert = tls.cert.read_bytes()
    creds = grpc.ssl_channel_credentials(
        root_certificates=cert, private_key=tls.key.read_bytes(), certificate_chain=cert
    )
    return grpc.aio.secure_channel(
        address,
        creds,
        options=[
            ("grpc.ssl_target_name_override", SERVER_NAME),
            ("grpc.keepalive_time_ms", 20000),
            ("grpc.max_receive_message_length", 256 << 20),
        ],
    )


class RemoteCredentials:
    """L3 lookup: asks the control plane. Any RPC failure is a CredentialLookupError."""

    def __init__(self, channel: grpc.aio.Channel, timeout_s: float = 2.0) -> None:
        self._stub = pb_grpc.ClusterStub(channel)
        self._timeout = timeout_s

    async def lookup(self, key_hash: str) -> CredentialMatch | None:
        try:
            reply = await self._stub.LookupCredential(
                pb.CredentialLookupRequest(key_hash=key_hash), timeout=self._timeout
            )
        except grpc.aio.AioRpcError as exc:
            raise CredentialLookupError(f"control plane lookup failed: {exc.code().name}") from exc
        if not reply.found:
            return None
        return CredentialMatch(
            credential=CredentialInfo(reply.credential_id, reply.consumer.id),
            consumer=ConsumerInfo(
                reply.consumer.id, reply.consumer.username or None, reply.consumer.custom_id or None
            ),
            expires_at=reply.expires_at or None,
        )


@dataclass(frozen=True, slots=True)
class NodeInfo:
    node_id: str
    hostname: str
    version: str
    plugins: Mapping[str, str]
    labels: Mapping[str, str]


class SyncClient:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        node: NodeInfo,
        compile_snapshot: Callable[[Snapshot], Runtime],
        apply: Callable[[Runtime], None],
        credentials: CachedCredentials,
        *,
        heartbeat_s: float = 10.0,
        backoff_max_s: float = 30.0,
    ) -> None:
        self._stub = pb_grpc.ClusterStub(channel)
        self._node = node
        self._compile = compile_snapshot
        self._apply = apply
        self._credentials = credentials
        self._heartbeat_s = heartbeat_s
        self._backoff_max_s = backoff_max_s
        self.version = 0
        self.hash = ""
        self.last_error = ""

    async def run(self) -> None:
        attempt = 0
        while True:
            try:
                await self._session()
                attempt = 0
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                log.warning("control plane stream ended: %s %s", exc.code().name, exc.details())
            except Exception:
                log.exception("control plane stream failed")
            attempt += 1
            delay = min(self._backoff_max_s, 0.5 * 2 ** min(attempt, 10))
            await asyncio.sleep(delay * random.uniform(0.5, 1.0))  # noqa: S311 - jitter, not crypto

    async def _session(self) -> None:
        call: Any = self._stub.Sync()  # type: ignore[call-arg]  # stubs lack the no-iterator form
        node = self._node
        await call.write(
            pb.NodeMessage(
                hello=pb.Hello(
                    node_id=node.node_id,
                    hostname=node.hostname,
                    version=node.version,
                    plugins=[pb.PluginInfo(name=n, version=v) for n, v in node.plugins.items()],
                    labels=dict(node.labels),
                    config_hash=self.hash,
                    config_version=self.version,
                )
            )
        )
        log.info("connected to control plane")
        beats = asyncio.create_task(self._heartbeats(call))
        try:
            while True:
                message = await call.read()
                if message is EOF:
                    return
                kind = message.WhichOneof("msg")
                if kind == "snapshot":
                    await call.write(self._on_snapshot(message.snapshot))
                elif kind == "invalidation":
                    inv = message.invalidation
                    self._credentials.invalidate(
                        all_keys=inv.all, key_hashes=inv.key_hashes, consumer_ids=inv.consumer_ids
                    )
        finally:
            beats.cancel()
            call.cancel()

    def _on_snapshot(self, msg: pb.Snapshot) -> pb.NodeMessage:
        if msg.hash == self.hash and self.version:
            self.version = msg.version
            return pb.NodeMessage(ack=pb.Ack(version=msg.version, hash=msg.hash))
        try:
            if msg.encoding != "json+gzip":
                raise ValueError(f"unsupported snapshot encoding {msg.encoding!r}")
            snapshot = Snapshot.decode(gzip.decompress(msg.payload))
            if snapshot.hash != msg.hash:
                raise ValueError("snapshot hash does not match its content")
            runtime = self._compile(snapshot)
        except Exception as exc:
            self.last_error = str(exc)
            log.error("rejected snapshot version %d: %s", msg.version, exc)
            return pb.NodeMessage(nack=pb.Nack(version=msg.version, hash=msg.hash, error=str(exc)))
        self._apply(runtime)
        self.version, self.hash, self.last_error = msg.version, msg.hash, ""
        log.info("applied snapshot version %d (%s)", msg.version, msg.hash[:12])
        return pb.NodeMessage(ack=pb.Ack(version=msg.version, hash=msg.hash))

    async def _heartbeats(
        self, call: grpc.aio.StreamStreamCall[pb.NodeMessage, pb.ControlMessage]
    ) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            await call.write(
                pb.NodeMessage(
                    heartbeat=pb.Heartbeat(config_hash=self.hash, config_version=self.version)
                )
            )
