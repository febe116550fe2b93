"""The data plane's side of the cluster protocol: config stream and credential lookups (gRPC,
mTLS with the cluster certificate).

`SyncClient.run()` keeps a stream open forever: Hello, then for every Snapshot or Delta build
the new snapshot, compile it and Ack (swap the runtime), Nack (it does not compile: keep serving
the last good one) or Resync (a delta did not apply: ask for the full snapshot); Invalidations
clear the credential cache; Heartbeats carry the running hash. On any failure it moves to the
next control-plane address and reconnects with jittered exponential backoff, and the node keeps
serving its last snapshot meanwhile. With a `SnapshotCache` every applied snapshot is saved, and
`restore()` serves the saved one at start, before any control plane answers.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import grpc

from data_plane.control_planes import ControlPlanes, RemoteCredentials, open_channel
from data_plane.credentials import CachedCredentials
from data_plane.runtime import Runtime
from data_plane.snapshot_cache import SnapshotCache
from data_plane.sync_payloads import Rejected, Unusable, decode_delta, decode_snapshot
from gateway.malloc_trim import release_free_memory
from gateway.snapshot import Snapshot
from lockgate.v1 import cluster_pb2 as pb

__all__ = ["ControlPlanes", "NodeInfo", "RemoteCredentials", "SyncClient", "open_channel"]

EOF: object = grpc.aio.EOF  # type: ignore[attr-defined]  # missing from grpc-stubs

log = logging.getLogger("lockgate.dp.sync")


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
        planes: ControlPlanes,
        node: NodeInfo,
        compile_snapshot: Callable[[Snapshot], Runtime],
        apply: Callable[[Runtime], None],
        credentials: CachedCredentials,
        *,
        heartbeat_s: float = 5.0,
        backoff_max_s: float = 30.0,
        cache: SnapshotCache | None = None,
    ) -> None:
        """`compile_snapshot` runs in a worker thread; `apply` swaps the runtime in (loop)."""
        self._planes = planes
        self._node = node
        self._compile = compile_snapshot
        self._apply = apply
        self._credentials = credentials
        self._heartbeat_s = heartbeat_s
        self._backoff_max_s = backoff_max_s
        self._cache = cache
        self._saving: asyncio.Task[None] | None = None
        self.snapshot: Snapshot | None = None
        self.version = 0
        self.hash = ""
        self.last_error = ""
        self.incompatible = ""
        self.connected_to: str | None = None
        self.received: dict[str, int] = {}
        """Messages received from control planes, by kind (snapshot, delta, ...)."""
        self.bytes_received: dict[str, int] = {}
        """Their serialized sizes, by kind."""

    async def restore(self) -> bool:
        """Serve the cached snapshot, if there is a usable one. True if it did."""
        if self._cache is None:
            return False
        snapshot = await asyncio.to_thread(self._cache.load)
        if snapshot is None:
            return False
        try:
            runtime = await asyncio.to_thread(self._compile, snapshot)
        except Exception as exc:
            log.warning("the cached snapshot does not compile, ignoring it: %s", exc)
            return False
        self._swap(snapshot, runtime)
        await asyncio.to_thread(release_free_memory)
        log.info(
            "serving the cached snapshot version %d until a control plane answers", snapshot.version
        )
        return True

    async def run(self) -> None:
        failures = 0
        while True:
            address = self._planes.address
            received = False
            try:
                received = await self._session()
            except asyncio.CancelledError:
                raise
            except grpc.aio.AioRpcError as exc:
                log.warning("control plane %s: %s %s", address, exc.code().name, exc.details())
            except Exception:
                log.exception("control plane %s stream failed", address)
            finally:
                self.connected_to = None
            failures = 0 if received else failures + 1
            self._planes.advance()  # fail over: the next attempt goes to the next address
            await self._planes.wait_until_reachable(self._delay(failures))

    def _delay(self, failures: int) -> float:
        count = len(self._planes.addresses)
        if failures == 0 or failures % count:
            # A stream that worked ended, or more addresses to try in this round: go on soon.
            return random.uniform(0.05, 0.2)  # noqa: S311 - jitter, not crypto
        rounds = failures // count
        delay = min(self._backoff_max_s, 0.5 * 2.0 ** min(rounds - 1, 10))
        return delay * random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not crypto

    async def _session(self) -> bool:
        """One stream; returns whether the control plane sent anything."""
        call: Any = self._planes.stub.Sync()  # type: ignore[call-arg]  # stubs lack this form
        node = self._node
        lock = asyncio.Lock()

        async def send(message: pb.NodeMessage) -> None:
            async with lock:  # one write at a time on a stream
                await call.write(message)

        await send(
            pb.NodeMessage(
                hello=pb.Hello(
                    node_id=node.node_id,
                    hostname=node.hostname,
                    version=node.version,
                    plugins=[pb.PluginInfo(name=n, version=v) for n, v in node.plugins.items()],
                    labels=dict(node.labels),
                    config_hash=self.hash,
                    config_version=self.version,
                    heartbeat_interval_ms=int(self._heartbeat_s * 1000),
                    accepts_deltas=True,
                )
            )
        )
        received = False
        beats = asyncio.create_task(self._heartbeats(send))
        try:
            while True:
                message = await call.read()
                if message is EOF:
                    return received
                if not received:
                    received = True
                    self.connected_to = self._planes.address
                    log.info("connected to control plane %s", self.connected_to)
                kind = message.WhichOneof("msg")
                self.received[kind] = self.received.get(kind, 0) + 1
                self.bytes_received[kind] = self.bytes_received.get(kind, 0) + message.ByteSize()
                if kind == "snapshot":
                    await send(await self._on_snapshot(message.snapshot))
                elif kind == "delta":
                    await send(await self._on_delta(message.delta))
                elif kind == "incompatible":
                    self.incompatible = message.incompatible.reason
                    log.error("the control plane sends no config: %s", self.incompatible)
                elif kind == "invalidation":
                    inv = message.invalidation
                    self._credentials.invalidate(
                        all_keys=inv.all, key_hashes=inv.key_hashes, consumer_ids=inv.consumer_ids
                    )
        finally:
            beats.cancel()
            call.cancel()

    async def _on_snapshot(self, msg: pb.Snapshot) -> pb.NodeMessage:
        if msg.hash == self.hash and self.snapshot is not None:
            self.version = msg.version
            return self._ack()

        def prepare() -> tuple[Snapshot, Runtime]:
            snapshot = decode_snapshot(msg)
            return snapshot, self._compile_or_reject(snapshot)

        return await self._install(msg.version, msg.hash, prepare, msg.payload)

    async def _on_delta(self, msg: pb.Delta) -> pb.NodeMessage:
        base = self.snapshot
        if base is not None and msg.base_hash == msg.hash == self.hash:
            self.version = msg.version  # "you run the current config": nothing to apply
            return self._ack()

        def prepare() -> tuple[Snapshot, Runtime]:
            snapshot = decode_delta(base, msg)
            return snapshot, self._compile_or_reject(snapshot)

        return await self._install(msg.version, msg.hash, prepare, None)

    def _compile_or_reject(self, snapshot: Snapshot) -> Runtime:
        try:
            return self._compile(snapshot)
        except Exception as exc:
            raise Rejected(str(exc)) from exc

    async def _install(
        self,
        version: int,
        config_hash: str,
        prepare: Callable[[], tuple[Snapshot, Runtime]],
        payload: bytes | None,
    ) -> pb.NodeMessage:
        try:
            # Decoding and compiling a large config takes a while: off the proxy's loop.
            snapshot, runtime = await asyncio.to_thread(prepare)
        except Unusable as exc:
            log.warning(
                "delta to version %d does not apply (%s): asking for a full one", version, exc
            )
            return pb.NodeMessage(
                resync=pb.Resync(
                    running_version=self.version, running_hash=self.hash, reason=str(exc)
                )
            )
        except Rejected as exc:
            self.last_error = str(exc)
            log.error("rejected snapshot version %d: %s", version, exc)
            return pb.NodeMessage(
                nack=pb.Nack(
                    version=version,
                    hash=config_hash,
                    error=str(exc),
                    running_version=self.version,
                    running_hash=self.hash,
                )
            )
        self._swap(snapshot, runtime)
        self.last_error = self.incompatible = ""
        log.info("applied snapshot version %d (%s)", version, config_hash[:12])
        self._save(snapshot, payload)
        return self._ack()

    def _swap(self, snapshot: Snapshot, runtime: Runtime) -> None:
        self._apply(runtime)
        self.snapshot, self.version, self.hash = snapshot, snapshot.version, snapshot.hash

    def _ack(self) -> pb.NodeMessage:
        return pb.NodeMessage(ack=pb.Ack(version=self.version, hash=self.hash))

    def _save(self, snapshot: Snapshot, payload: bytes | None) -> None:
        """In the background, in order: write the cache file (if any), then give the memory
        that decoding, compiling and saving freed back to the system."""
        cache = self._cache
        previous = self._saving

        async def save() -> None:
            if previous is not None:
                await asyncio.gather(previous, return_exceptions=True)  # keep saves in order
            if cache is not None:
                try:
                    await asyncio.to_thread(cache.save, snapshot, payload)
                except OSError as exc:
                    log.warning("cannot write the snapshot cache %s: %s", cache.path, exc)
            await asyncio.to_thread(release_free_memory)

        self._saving = asyncio.create_task(save())

    async def flush_cache(self) -> None:
        """Wait for pending cache writes (on shutdown)."""
        if self._saving is not None:
            await asyncio.gather(self._saving, return_exceptions=True)

    async def _heartbeats(self, send: Callable[[pb.NodeMessage], Any]) -> None:
        while True:
            await asyncio.sleep(self._heartbeat_s)
            await send(
                pb.NodeMessage(
                    heartbeat=pb.Heartbeat(config_hash=self.hash, config_version=self.version)
                )
            )
