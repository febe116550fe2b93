"""Key-auth credential lookups on the data plane: L1 in-process LRU over the control plane (L3).

Positive entries live `positive_ttl` seconds (bounded by the credential's own expiry), negative
ones `negative_ttl`; the control plane pushes invalidations, and the TTLs bound staleness when a
push is lost. Concurrent misses for one key share one remote lookup. (Redis as L2: issue 5.)
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Iterable
from typing import Protocol

from gateway.credentials import CredentialLookupError, CredentialMatch


class RemoteLookup(Protocol):
    async def lookup(self, key_hash: str) -> CredentialMatch | None: ...


class CachedCredentials:
    """A `gateway.credentials.CredentialLookup` with an L1 cache in front of `remote`."""

    def __init__(
        self,
        remote: RemoteLookup,
        *,
        capacity: int = 100_000,
        positive_ttl: float = 300.0,
        negative_ttl: float = 5.0,
    ) -> None:
        self._remote = remote
        self._capacity = capacity
        self._positive_ttl = positive_ttl
        self._negative_ttl = negative_ttl
        self._entries: OrderedDict[str, tuple[CredentialMatch | None, float]] = OrderedDict()
        self._inflight: dict[str, asyncio.Future[CredentialMatch | None]] = {}

    async def lookup(self, key_hash: str) -> CredentialMatch | None:
        now = time.monotonic()
        entry = self._entries.get(key_hash)
        if entry is not None:
            match, expires = entry
            if now < expires and (match is None or not match.expired()):
                self._entries.move_to_end(key_hash)
                return match
            del self._entries[key_hash]
        pending = self._inflight.get(key_hash)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[CredentialMatch | None] = asyncio.get_running_loop().create_future()
        self._inflight[key_hash] = future
        try:
            match = await self._remote.lookup(key_hash)
        except CredentialLookupError as exc:
            future.set_exception(exc)
            future.exception()  # mark retrieved: waiters re-raise it themselves
            raise
        finally:
            del self._inflight[key_hash]
        future.set_result(match)
        self._store(key_hash, match, now)
        return match

    def _store(self, key_hash: str, match: CredentialMatch | None, now: float) -> None:
        ttl = self._negative_ttl if match is None else self._positive_ttl
        if match is not None and match.expires_at is not None:
            ttl = min(ttl, max(0.0, match.expires_at - time.time()))
        self._entries[key_hash] = (match, now + ttl)
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
        """Drop cached answers: everything, some keys, or every key of some consumers."""
        if all_keys:
            self._entries.clear()
            return
        for key_hash in key_hashes:
            self._entries.pop(key_hash, None)
        consumers = set(consumer_ids)
        if consumers:
            stale = [
                key
                for key, (match, _) in self._entries.items()
                if match is not None and match.consumer.id in consumers
            ]
            for key in stale:
                del self._entries[key]

    def __len__(self) -> int:
        return len(self._entries)
