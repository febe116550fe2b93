"""The control planes a data plane may talk to: one mTLS gRPC channel per address, and which one
is in use. The config stream fails over to the next address when its stream ends; credential
lookups follow it."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence

import grpc

from gateway.context import ConsumerInfo, CredentialInfo
from gateway.credentials import CredentialLookupError, CredentialMatch
from lockgate.certs import SERVER_NAME
from lockgate.settings import ClusterTLS
from lockgate.v1 import cluster_pb2 as pb
from lockgate.v1 import cluster_pb2_grpc as pb_grpc


def open_channel(address: str, tls: ClusterTLS, *, keepalive_s: float = 20.0) -> grpc.aio.Channel:
    """A channel to one control plane, presenting the cluster certificate and trusting only it.

    It pings the control plane every `keepalive_s` and drops the connection when a ping is not
    answered within 2 x `keepalive_s`: a control plane that is frozen or cut off (no FIN, no
    RST; its TCP connection looks open) is given up within 3 intervals, as the control plane
    gives up a silent node, and the config stream fails over."""
    cert = tls.cert.read_bytes()
    creds = grpc.ssl_channel_credentials(
        root_certificates=cert, private_key=tls.key.read_bytes(), certificate_chain=cert
    )
    keepalive_ms = max(1, int(keepalive_s * 1000))
    return grpc.aio.secure_channel(
        address,
        creds,
        options=[
            ("grpc.ssl_target_name_override", SERVER_NAME),
            ("grpc.keepalive_time_ms", keepalive_ms),
            ("grpc.keepalive_timeout_ms", 2 * keepalive_ms),
            ("grpc.http2.ping_timeout_ms", 2 * keepalive_ms),
            ("grpc.http2.max_pings_without_data", 0),  # pings go on while nothing is sent
            ("grpc.max_receive_message_length", 256 << 20),
            # Reconnect quickly when a control plane comes back (the stream has its own backoff).
            ("grpc.initial_reconnect_backoff_ms", 200),
            ("grpc.max_reconnect_backoff_ms", 2000),
        ],
    )


def parse_addresses(value: str) -> list[str]:
    """`host:port[,host:port...]` -> addresses, in order, without blanks or duplicates."""
    out: list[str] = []
    for item in value.split(","):
        item = item.strip()
        if item and item not in out:
            out.append(item)
    if not out:
        raise ValueError("no control plane address")
    return out


class ControlPlanes:
    def __init__(self, channels: Sequence[tuple[str, grpc.aio.Channel]]) -> None:
        if not channels:
            raise ValueError("no control plane address")
        self._channels = list(channels)
        self._stubs: list[pb_grpc.ClusterAsyncStub] = [
            pb_grpc.ClusterStub(channel) for _, channel in self._channels
        ]
        self._index = 0

    @staticmethod
    def open(
        addresses: Sequence[str], tls: ClusterTLS, *, keepalive_s: float = 20.0
    ) -> ControlPlanes:
        return ControlPlanes(
            [(a, open_channel(a, tls, keepalive_s=keepalive_s)) for a in addresses]
        )

    @property
    def addresses(self) -> list[str]:
        return [address for address, _ in self._channels]

    @property
    def address(self) -> str:
        """The address in use."""
        return self._channels[self._index][0]

    @property
    def channel(self) -> grpc.aio.Channel:
        """The channel in use."""
        return self._channels[self._index][1]

    @property
    def stub(self) -> pb_grpc.ClusterAsyncStub:
        return self._stubs[self._index]

    async def wait_until_reachable(self, delay: float) -> None:
        """Wait `delay`, or less if the control plane in use becomes reachable meanwhile (its
        channel retries connecting with its own capped backoff): a control plane that comes
        back is used within a couple of seconds, not after a long stream backoff."""
        channel = self.channel
        if channel.get_state(try_to_connect=True) == grpc.ChannelConnectivity.READY:
            # Reachable, yet the stream failed: an error on its side. Back off in full.
            await asyncio.sleep(delay)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(_until_ready(channel), delay)

    def advance(self) -> None:
        """Use the next address (round robin)."""
        self._index = (self._index + 1) % len(self._channels)

    async def close(self) -> None:
        for _, channel in self._channels:
            await channel.close(grace=None)


class RemoteCredentials:
    """L3 lookup: asks the control plane in use. Any RPC failure is a CredentialLookupError."""

    def __init__(self, planes: ControlPlanes | grpc.aio.Channel, timeout_s: float = 2.0) -> None:
        if not isinstance(planes, ControlPlanes):
            planes = ControlPlanes([("", planes)])
        self._planes = planes
        self._timeout = timeout_s

    async def lookup(self, key_hash: str) -> CredentialMatch | None:
        try:
            reply = await self._planes.stub.LookupCredential(
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


async def _until_ready(channel: grpc.aio.Channel) -> None:
    state = channel.get_state(try_to_connect=True)
    while state != grpc.ChannelConnectivity.READY:
        await channel.wait_for_state_change(state)
        state = channel.get_state(try_to_connect=True)
