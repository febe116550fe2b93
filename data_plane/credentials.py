"""Key-auth credential lookups on the data plane: the chain L1 -> L2 -> L3.

- L1: this process's LRU (`capacity` entries). Positive entries are fresh for `positive_ttl`
  seconds (bounded by the credential's own expiry), negative ones for `negative_ttl`.
- L2: Redis shared by every data plane (`data_plane.redis_credentials`), optional.
- L3: the control plane over gRPC (`data_plane.cluster_client.RemoteCredentials`).

Concurrent misses for one key share one lookup. A positive answer from L3 is written back to L2.

Revocation: the control plane pushes invalidations; `invalidate` drops the L1 entries and, for
`bypass_s` seconds, sends lookups of those keys past L2 straight to L3, because the push can
arrive before the control plane's own write to Redis lands. A lookup that was in flight when an
invalidation arrived answers its callers but is not cached. TTLs bound staleness if a push is
lost.

Refresh ahead: a positive entry is fresh for `positive_ttl` less a random share of up to
`jitter` (keys first seen together do not all expire together), and a hit in its last
`1 - refresh_after` of that time answers from L1 at once and reloads the key in the background
(one reload per key). So a key in use never waits on L2/L3 after its first lookup, the lookups
behind it are spread over time, and an entry is still never served past its TTL; revocation
works as before.

Outages: when no backend can answer (`CredentialLookupError`), an L1 entry that went stale at
most `stale_if_error` seconds ago is still served, so known keys keep working while both Redis
and the control plane are down; an unknown key raises (key-auth answers 503).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Protocol

from gateway.credentials import CredentialLookupError, CredentialMatch

log = logging.getLogger("lockgate.dp.credentials")

BYPASS_S = 2.0
"""How long after a pushed invalidation a key is checked with the control plane only: the
control plane's write-through to Redis normally lands within milliseconds of the push."""


class RemoteLookup(Protocol):
    async def lookup(self, key_hash: str) -> CredentialMatch | None: ...


class SharedCacheUnavailable(Exception):
    """L2 could not answer (down, slow, circuit breaker open, or a malformed record)."""


class SharedCache(Protocol):
    """L2 (see `data_plane.redis_credentials.RedisCredentials` for the contract)."""

    async def get(self, key_hash: str) -> tuple[bool, CredentialMatch | None]: ...

    def put(self, key_hash: str, match: CredentialMatch) -> None: ...


class _Entry:
    __slots__ = ("fresh_until", "match", "refresh_at", "stale_until")

    def __init__(
        self,
        match: CredentialMatch | None,
        fresh_until: float,
        stale_until: float,
        refresh_at: float,
    ):
        self.match = match
        self.fresh_until = fresh_until
        self.stale_until = stale_until
        self.refresh_at = refresh_at
        """A hit from then on reloads the key in the background (inf: never, or started)."""


class CachedCredentials:
    """A `gateway.credentials.CredentialLookup`: L1 in front of `shared` (L2) and `remote` (L3)."""

    def __init__(
        self,
        remote: RemoteLookup,
        *,
        shared: SharedCache | None = None,
        capacity: int = 100_000,
        positive_ttl: float = 300.0,
        negative_ttl: float = 5.0,
        stale_if_error: float = 3600.0,
        bypass_s: float = BYPASS_S,
        jitter: float = 0.1,
        refresh_after: float = 0.8,
    ) -> None:
        assert 0.0 <= jitter < 1.0 and 0.0 < refresh_after <= 1.0
        self._remote = remote
        self._shared = shared
        self._capacity = capacity
        self._positive_ttl = positive_ttl
        self._negative_ttl = negative_ttl
        self._stale_if_error = stale_if_error
        self._bypass_s = bypass_s
        self._jitter = jitter
        self._refresh_after = refresh_after
        self._refreshes: set[asyncio.Task[None]] = set()
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[CredentialMatch | None]] = {}
        self._bypass: dict[str, float] = {}
        self._bypass_all_until = 0.0
        self._generation = 0  # bumped by every invalidation

    async def lookup(self, key_hash: str) -> CredentialMatch | None:
        now = time.monotonic()
        entry = self._entries.get(key_hash)
        if entry is not None and now < entry.fresh_until:
            match = entry.match
            if match is None or not match.expired():
                self._entries.move_to_end(key_hash)
                if now >= entry.refresh_at:
                    entry.refresh_at = float("inf")
                    self._refresh(key_hash)
                return match
        pending = self._inflight.get(key_hash)
        if pending is not None:
            return await asyncio.shield(pending)
        return await self._load(key_hash, now)

    def _refresh(self, key_hash: str) -> None:
        if key_hash in self._inflight:
            return
        task = asyncio.get_running_loop().create_task(self._reload(key_hash))
        self._refreshes.add(task)
        task.add_done_callback(self._refreshes.discard)

    async def _reload(self, key_hash: str) -> None:
        try:
            await self._load(key_hash, time.monotonic(), background=True)
        except CredentialLookupError as exc:  # the entry stays until its TTL, then a miss
            log.debug("background refresh of a credential failed: %s", exc)
        except Exception:  # a background task: nothing else will see it
            log.exception("background refresh of a credential failed")

    async def close(self) -> None:
        """Cancel the background refreshes still running (on shutdown)."""
        for task in list(self._refreshes):
            task.cancel()
        await asyncio.gather(*self._refreshes, return_exceptions=True)

    async def _load(
        self, key_hash: str, now: float, *, background: bool = False
    ) -> CredentialMatch | None:
        """Look the key up in L2/L3 (one lookup per key at a time) and cache the answer."""
        future: asyncio.Future[CredentialMatch | None] = asyncio.get_running_loop().create_future()
        self._inflight[key_hash] = future
        generation = self._generation
        try:
            match, from_remote = await self._fetch(key_hash, now)
        except CredentialLookupError as exc:
            stale = self._stale(key_hash)
            if stale is None:
                future.set_exception(exc)
                future.exception()  # mark retrieved: waiters re-raise it themselves
                raise
            if background:  # the entry was fresh when its refresh began: nothing changes
                log.debug("background refresh of a credential failed: %s", exc)
            else:
                log.warning("serving a cached credential past its TTL: %s", exc)
            future.set_result(stale)
            return stale
        finally:
            del self._inflight[key_hash]
        future.set_result(match)
        if generation == self._generation:  # no invalidation raced this lookup
            self._store(key_hash, match, time.monotonic())
            if from_remote and match is not None and self._shared is not None:
                self._shared.put(key_hash, match)
        return match

    async def _fetch(self, key_hash: str, now: float) -> tuple[CredentialMatch | None, bool]:
        """(answer, whether it came from the control plane)."""
        shared = self._shared
        if shared is not None and not self._bypassed(key_hash, now):
            try:
                known, match = await shared.get(key_hash)
            except SharedCacheUnavailable as exc:
                log.debug("Redis skipped: %s", exc)
            else:
                if known:
                    return (None if match is None or match.expired() else match), False
        return await self._remote.lookup(key_hash), True

    def _bypassed(self, key_hash: str, now: float) -> bool:
        if now < self._bypass_all_until:
            return True
        until = self._bypass.get(key_hash)
        if until is None:
            return False
        if now < until:
            return True
        del self._bypass[key_hash]
        return False

    def _stale(self, key_hash: str) -> CredentialMatch | None:
        entry = self._entries.get(key_hash)
        if entry is None or entry.match is None or entry.match.expired():
            return None
        return entry.match if time.monotonic() < entry.stale_until else None

    def _store(self, key_hash: str, match: CredentialMatch | None, now: float) -> None:
        if match is None:
            ttl, stale, refresh_at = self._negative_ttl, 0.0, float("inf")
        else:
            spread = random.random()  # noqa: S311 (spreads expiries; nothing secret)
            ttl = self._positive_ttl * (1.0 - self._jitter * spread)
            refresh_at = now + ttl * self._refresh_after
            if match.expires_at is not None:
                ttl = min(ttl, max(0.0, match.expires_at - time.time()))
            stale = self._stale_if_error
        self._entries[key_hash] = _Entry(match, now + ttl, now + ttl + stale, refresh_at)
        self._entries.move_to_end(key_hash)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

    def invalidate(
        self,
        *,
        all_keys: bool = False,
        key_hashes: Iterable[str] = (),
        consumer_ids: Iterable[str] = (),
    ) -> None:
        """Drop cached answers: everything, some keys, or every key of some consumers; the
        next lookups of the keys named (of every key, for `all_keys`) skip L2 for `bypass_s`."""
        self._generation += 1
        until = time.monotonic() + self._bypass_s
        if all_keys:
            self._entries.clear()
            self._bypass.clear()
            self._bypass_all_until = until
            return
        for key_hash in key_hashes:
            self._entries.pop(key_hash, None)
            self._bypass[key_hash] = until
        if len(self._bypass) > self._capacity:  # bounded: degrade to bypassing every key
            self._bypass.clear()
            self._bypass_all_until = until
        consumers = set(consumer_ids)
        if consumers:
            stale = [
                key
                for key, entry in self._entries.items()
                if entry.match is not None and entry.match.consumer.id in consumers
            ]
            for key in stale:
                del self._entries[key]
                self._bypass[key] = until

    def __len__(self) -> int:
        return len(self._entries)
