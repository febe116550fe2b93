"""The control plane's side of the Redis credential cache: write-through and bulk warm-up.

After every committed write, `on_change(event)` rewrites the Redis record of each key hash the
write touched, from the store's current answer: the credential (TTL `ttl_s`, bounded by the
credential's expiry) or a tombstone (TTL `tombstone_ttl_s`) when it is gone. Redis work runs on
the event loop in the background; the store is read in a worker thread.

A maintenance task warms Redis in bulk (every credential, in batches) at start and whenever the
warm marker is missing: Redis restarted empty, or the marker expired, which happens every
`ttl_s / 2` so that records are refreshed before they expire. Write-throughs that fail (Redis
down) are kept and retried on every maintenance pass; keys changed while a warm-up batch was
being written are written through again after it, so a batch read before a change can't leave
the old value behind.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Iterator

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from control_plane.store.events import ChangeEvent
from gateway.credentials import CredentialMatch
from gateway.redis_credential_records import DEFAULT_PREFIX, TOMBSTONE, WARM_MARKER, encode

log = logging.getLogger("lockgate.cp.credential_cache")

LookupFn = Callable[[str], CredentialMatch | None]
IterFn = Callable[[int], Iterator[list[tuple[str, CredentialMatch]]]]


class CredentialWriteThrough:
    """Keeps Redis in step with the store. Call `start()` on the event loop, `on_change` after
    each committed write (from any thread), `stop()` at shutdown."""

    def __init__(
        self,
        client: aioredis.Redis,
        lookup: LookupFn,
        iter_credentials: IterFn,
        *,
        prefix: str = DEFAULT_PREFIX,
        ttl_s: int = 86_400,
        tombstone_ttl_s: int = 60,
        check_interval_s: float = 5.0,
        batch_size: int = 5_000,
    ) -> None:
        self._client = client
        self._lookup = lookup
        self._iter = iter_credentials
        self._prefix = prefix
        self._ttl_s = ttl_s
        self._tombstone_ttl_s = tombstone_ttl_s
        self._check_interval_s = check_interval_s
        self._batch_size = batch_size
        self._loop: asyncio.AbstractEventLoop | None = None
        self._pending: set[str] = set()
        self._wake = asyncio.Event()
        self._warming = False
        self._touched: set[str] = set()
        self._tasks: list[asyncio.Task[None]] = []
        self._stopping = False
        self._flushing = asyncio.Lock()  # one flush at a time: writes of a key stay in order
        self.warmed = asyncio.Event()
        """Set after each completed warm-up (tests and the benchmark wait on it)."""
        self.last_warm_count = 0

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._tasks = [
            asyncio.create_task(self._flush_forever()),
            asyncio.create_task(self._maintain_forever()),
        ]

    async def stop(self) -> None:
        # the flag, not only cancel(): on 3.11 a cancel racing a redis-py socket timeout can
        # surface as TimeoutError, which the loops survive by design
        self._stopping = True
        self._wake.set()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self._client.aclose()

    def on_change(self, event: ChangeEvent) -> None:
        """Schedule the write-through of `event`'s key hashes; never blocks, any thread."""
        if not event.key_hashes or self._loop is None:
            return  # before start(): the warm-up at start covers it
        hashes = tuple(event.key_hashes)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            self._queue(hashes)
        else:
            self._loop.call_soon_threadsafe(self._queue, hashes)

    def _queue(self, key_hashes: Iterable[str]) -> None:
        self._pending.update(key_hashes)
        if self._warming:
            self._touched.update(key_hashes)
        self._wake.set()

    async def _flush_forever(self) -> None:
        while not self._stopping:
            await self._wake.wait()
            self._wake.clear()
            await self.flush()

    async def flush(self) -> bool:
        """Write the pending key hashes through now; False (and kept pending) if Redis failed."""
        async with self._flushing:
            if not self._pending:
                return True
            batch, self._pending = self._pending, set()
            lookup = self._lookup
            try:
                matches = await asyncio.to_thread(lambda: [(h, lookup(h)) for h in batch])
                await self._write(matches, tombstones=True)
            except Exception as exc:  # Redis or the store: keep the keys for the next pass
                log.warning(
                    "Redis write-through of %d keys failed (will retry): %r", len(batch), exc
                )
                self._pending |= batch
                return False
            return True

    async def _write(
        self, matches: Iterable[tuple[str, CredentialMatch | None]], *, tombstones: bool
    ) -> None:
        now = time.time()
        pipe = self._client.pipeline(transaction=False)
        for key_hash, match in matches:
            ttl = self._ttl_s
            if match is not None and match.expires_at is not None:
                ttl = min(ttl, int(match.expires_at - now))
            if match is None or ttl <= 0:
                if tombstones:
                    pipe.set(self._prefix + key_hash, TOMBSTONE, ex=self._tombstone_ttl_s)
            else:
                pipe.set(self._prefix + key_hash, encode(match), ex=ttl)
        await pipe.execute()

    async def _maintain_forever(self) -> None:
        while not self._stopping:
            try:
                if not await self._client.exists(WARM_MARKER):
                    await self.warm()
                if self._pending:
                    await self.flush()
            except (RedisError, OSError, TimeoutError) as exc:
                log.warning("Redis credential cache maintenance failed: %r", exc)
            except Exception:
                log.exception("Redis credential cache maintenance failed")
            await asyncio.sleep(self._check_interval_s)

    async def warm(self) -> int:
        """Write every credential to Redis in batches; returns how many. Raises on Redis errors
        (the maintenance task retries on its next pass)."""
        started = time.monotonic()
        count = 0
        self._warming, self._touched = True, set()
        try:
            batches = self._iter(self._batch_size)
            while True:
                batch = await asyncio.to_thread(next, batches, None)
                if batch is None:
                    break
                await self._write(batch, tombstones=False)
                count += len(batch)
                if self._touched:  # changed while this batch was read and written
                    self._queue(self._touched)
                    self._touched = set()
        finally:
            self._warming = False
        await self._client.set(WARM_MARKER, str(int(time.time())), ex=max(1, self._ttl_s // 2))
        log.info("warmed Redis with %d credentials in %.1f s", count, time.monotonic() - started)
        self.last_warm_count = count
        self.warmed.set()
        return count
