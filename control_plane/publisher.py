"""Keeps the current snapshot and fans it out, with credential invalidations, to connected nodes.

Writes notify it from any thread (`notify_threadsafe`); invalidations go out at once, snapshot
rebuilds are debounced so a burst of writes produces a handful of snapshots, not one per write.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
from collections.abc import Callable, Iterable

from gateway.snapshot import Snapshot
from lockgate.v1 import cluster_pb2 as pb

log = logging.getLogger("lockgate.cp.publisher")


def snapshot_message(snapshot: Snapshot) -> pb.ControlMessage:
    return pb.ControlMessage(
        snapshot=pb.Snapshot(
            version=snapshot.version,
            hash=snapshot.hash,
            encoding="json+gzip",
            payload=gzip.compress(snapshot.encode(), compresslevel=6),
        )
    )


class Publisher:
    def __init__(
        self,
        build: Callable[[], Snapshot],
        *,
        debounce_s: float = 0.05,
        on_snapshot: Callable[[Snapshot], None] = lambda s: None,
    ) -> None:
        self._build = build
        self._debounce_s = debounce_s
        self._on_snapshot = on_snapshot
        self._subscribers: set[asyncio.Queue[pb.ControlMessage]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: asyncio.TimerHandle | None = None
        self._rebuilding: asyncio.Task[None] | None = None
        self._dirty = False
        self.current: Snapshot | None = None
        self.message: pb.ControlMessage | None = None

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._rebuild()

    def subscribe(self) -> asyncio.Queue[pb.ControlMessage]:
        queue: asyncio.Queue[pb.ControlMessage] = asyncio.Queue()
        self._subscribers.add(queue)
        if self.message is not None:
            queue.put_nowait(self.message)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[pb.ControlMessage]) -> None:
        self._subscribers.discard(queue)

    def notify_threadsafe(self, key_hashes: Iterable[str], consumer_ids: Iterable[str]) -> None:
        """A committed write happened: invalidate credentials and schedule a rebuild."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._changed, tuple(key_hashes), tuple(consumer_ids))

    def _changed(self, key_hashes: tuple[str, ...], consumer_ids: tuple[str, ...]) -> None:
        if key_hashes or consumer_ids:
            self._broadcast(
                pb.ControlMessage(
                    invalidation=pb.Invalidation(key_hashes=key_hashes, consumer_ids=consumer_ids)
                )
            )
        self._dirty = True
        if self._pending is None and self._loop is not None:
            self._pending = self._loop.call_later(self._debounce_s, self._fire)

    def _fire(self) -> None:
        self._pending = None
        if self._rebuilding is not None and not self._rebuilding.done():
            # A rebuild is running; it re-checks `_dirty` when done.
            return
        self._rebuilding = asyncio.ensure_future(self._rebuild())

    async def _rebuild(self) -> None:
        while True:
            self._dirty = False
            try:
                snapshot = await asyncio.to_thread(self._build)
            except Exception:
                log.exception("snapshot build failed")
                return
            if self.current is None or snapshot.hash != self.current.hash:
                self.current = snapshot
                self.message = snapshot_message(snapshot)
                self._on_snapshot(snapshot)
                self._broadcast(self.message)
                log.info("snapshot version %d (%s)", snapshot.version, snapshot.hash[:12])
            if not self._dirty:
                return

    def _broadcast(self, message: pb.ControlMessage) -> None:
        for queue in self._subscribers:
            queue.put_nowait(message)
