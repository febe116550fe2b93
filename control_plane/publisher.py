"""Keeps the current snapshot and recent ones, and fans changes out to connected node sessions.

Writes notify it from any thread (`notify_threadsafe`); credential invalidations go out at once,
snapshot rebuilds are debounced so a burst of writes produces a handful of snapshots, not one per
write. Several control planes may share one database: `watch_revision` polls the store's
revision and rebuilds when another control plane wrote (and, not knowing which credentials that
write touched, tells nodes to drop every cached credential).

Subscribers (one per node session) receive `Snapshot` values (a new current snapshot) and
ready-made `ControlMessage`s (invalidations); a session asks `message_for(base_hash)` for the
cheapest message that brings its node from `base_hash` to the current snapshot: a delta when the
base is among the recent snapshots, else the full snapshot.
"""

from __future__ import annotations

import asyncio
import gzip
import logging
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any

from gateway.snapshot import Snapshot
from gateway.snapshot_delta import KINDS, diff
from lockgate.v1 import cluster_pb2 as pb

log = logging.getLogger("lockgate.cp.publisher")

Update = Snapshot | pb.ControlMessage
"""What a subscriber queue carries: a new current snapshot, or a message to forward as is."""


def snapshot_message(snapshot: Snapshot) -> pb.ControlMessage:
    """The full snapshot as sent on the wire."""
    return pb.ControlMessage(
        snapshot=pb.Snapshot(
            version=snapshot.version,
            hash=snapshot.hash,
            encoding="json+gzip",
            payload=gzip.compress(snapshot.encode(), compresslevel=6),
        )
    )


def delta_message(base: Snapshot, target: Snapshot) -> pb.ControlMessage | None:
    """The delta from `base` to `target` as sent on the wire, or None if only a full fits."""
    delta = diff(base, target)
    total = sum(len(getattr(target, kind)) for kind in KINDS)
    # A delta touching most entities is no smaller than the full snapshot, and costs more to apply.
    if delta is None or delta.size * 2 > max(total, 1):
        return None
    return pb.ControlMessage(
        delta=pb.Delta(
            base_version=base.version,
            base_hash=base.hash,
            version=target.version,
            hash=target.hash,
            encoding="json+gzip",
            payload=gzip.compress(delta.encode(), compresslevel=6),
        )
    )


class Publisher:
    def __init__(
        self,
        build: Callable[[], Snapshot],
        *,
        debounce_s: float = 0.05,
        max_delay_s: float = 0.5,
        history: int = 16,
        on_snapshot: Callable[[Snapshot], None] = lambda s: None,
    ) -> None:
        """`build` makes the snapshot at the store's latest revision (called in a thread).
        A rebuild starts once writes pause for `debounce_s`, and at most `max_delay_s` after
        the first write it has not yet built. `history` is how many recent snapshots deltas
        may start from."""
        self._build = build
        self._debounce_s = debounce_s
        self._max_delay_s = max_delay_s
        self._first_dirty = 0.0
        self._history_size = history
        self._on_snapshot = on_snapshot
        self._subscribers: set[asyncio.Queue[Update]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: asyncio.TimerHandle | None = None
        self._rebuilding: asyncio.Task[None] | None = None
        self._dirty = False
        self._history: OrderedDict[str, Snapshot] = OrderedDict()  # by hash, oldest first
        self._messages: dict[str | None, asyncio.Future[pb.ControlMessage]] = {}
        self._known_revision = 0
        self.current: Snapshot | None = None
        self.builds = 0
        """How many snapshots were built (debounced rebuilds, including unchanged ones)."""
        self.published = 0
        """How many new snapshots (new hashes) were published."""

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        await self._rebuild()
        if self.current is not None:
            self._known_revision = self.current.version

    async def close(self) -> None:
        """Stop rebuilding and wait for builds in flight (before the store is closed)."""
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self._dirty = False
        pending: list[asyncio.Future[Any]] = list(self._messages.values())
        if self._rebuilding is not None:
            pending.append(self._rebuilding)
        await asyncio.gather(*pending, return_exceptions=True)

    def subscribe(self) -> asyncio.Queue[Update]:
        """A queue of updates for one session; it starts with the current snapshot, if any."""
        queue: asyncio.Queue[Update] = asyncio.Queue()
        self._subscribers.add(queue)
        if self.current is not None:
            queue.put_nowait(self.current)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Update]) -> None:
        self._subscribers.discard(queue)

    def notify_threadsafe(
        self, key_hashes: Iterable[str], consumer_ids: Iterable[str], revision: int | None = None
    ) -> None:
        """A committed write happened (at `revision`, if known): invalidate credentials and
        schedule a rebuild."""
        assert self._loop is not None, "start() first"
        self._loop.call_soon_threadsafe(
            self._changed, tuple(key_hashes), tuple(consumer_ids), revision
        )

    async def watch_revision(self, revision: Callable[[], int], interval_s: float = 0.3) -> None:
        """Poll the store's revision (in a thread) forever; a revision this control plane did
        not write means another one did: rebuild and drop every cached credential."""
        failing_since: float | None = None
        while True:
            await asyncio.sleep(interval_s)
            read = asyncio.ensure_future(asyncio.to_thread(revision))
            try:
                latest = await asyncio.shield(read)
            except asyncio.CancelledError:
                # Let the read finish: the caller may close the store right after cancelling.
                await asyncio.gather(read, return_exceptions=True)
                raise
            except Exception:
                if failing_since is None:  # once per outage, not every poll
                    failing_since = time.monotonic()
                    log.exception("reading the store revision failed; retrying quietly")
                continue
            if failing_since is not None:
                log.warning(
                    "the store answers again after %.1f s", time.monotonic() - failing_since
                )
                failing_since = None
            if latest > self._known_revision:
                log.info("revision %d written elsewhere; rebuilding", latest)
                self._known_revision = latest
                self._foreign_change()

    async def message_for(self, base_hash: str | None) -> pb.ControlMessage:
        """The message that brings a node running `base_hash` (None: unknown) to the current
        snapshot. Built once per base in a thread and shared by every session asking."""
        return await asyncio.shield(self._prepare(base_hash))

    def _prepare(self, base_hash: str | None) -> asyncio.Future[pb.ControlMessage]:
        current = self.current
        assert current is not None, "no snapshot yet"
        key = base_hash if base_hash in self._history and base_hash != current.hash else None
        future = self._messages.get(key)
        if future is None:
            base = self._history[key] if key is not None else None
            future = asyncio.ensure_future(asyncio.to_thread(_message, base, current))
            self._messages[key] = future
        return future

    def _changed(
        self, key_hashes: tuple[str, ...], consumer_ids: tuple[str, ...], revision: int | None
    ) -> None:
        if revision is not None:
            if revision > self._known_revision + 1:
                # Revisions in between were written by another control plane.
                self._broadcast(pb.ControlMessage(invalidation=pb.Invalidation(all=True)))
            self._known_revision = max(self._known_revision, revision)
        if key_hashes or consumer_ids:
            self._broadcast(
                pb.ControlMessage(
                    invalidation=pb.Invalidation(key_hashes=key_hashes, consumer_ids=consumer_ids)
                )
            )
        self._schedule()

    def _foreign_change(self) -> None:
        self._broadcast(pb.ControlMessage(invalidation=pb.Invalidation(all=True)))
        self._schedule()

    def _schedule(self) -> None:
        loop = self._loop
        if loop is None:
            return
        self._dirty = True
        now = loop.time()
        if self._pending is None:
            self._first_dirty = now
        else:
            self._pending.cancel()
        # Trailing debounce: wait for a pause in the writes, but not forever during a long burst.
        at = min(now + self._debounce_s, self._first_dirty + self._max_delay_s)
        self._pending = loop.call_at(at, self._fire)

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
            self.builds += 1
            if self.current is None or snapshot.hash != self.current.hash:
                self._publish(snapshot)
            if not self._dirty or self._pending is not None:
                return  # clean, or a timer for the newer writes will rebuild

    def _publish(self, snapshot: Snapshot) -> None:
        previous = self.current
        self.current = snapshot
        self.published += 1
        self._history.pop(snapshot.hash, None)
        self._history[snapshot.hash] = snapshot
        while len(self._history) > self._history_size:
            self._history.popitem(last=False)
        self._messages = {}
        # Most nodes run the previous snapshot: prepare that delta and the full one right away.
        if previous is not None:
            self._prepare(previous.hash)
        self._prepare(None)
        self._on_snapshot(snapshot)
        self._broadcast(snapshot)
        log.info("snapshot version %d (%s)", snapshot.version, snapshot.hash[:12])

    def _broadcast(self, update: Update) -> None:
        for queue in self._subscribers:
            queue.put_nowait(update)


def _message(base: Snapshot | None, target: Snapshot) -> pb.ControlMessage:
    if base is not None:
        message = delta_message(base, target)
        if message is not None:
            return message
    return snapshot_message(target)
