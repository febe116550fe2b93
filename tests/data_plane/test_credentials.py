from __future__ import annotations

import asyncio

import pytest

from data_plane.credentials import CachedCredentials
from gateway.context import ConsumerInfo, CredentialInfo
from gateway.credentials import CredentialLookupError, CredentialMatch


class CountingRemote:
    def __init__(self) -> None:
        self.calls: list[str] = []
        self.answers: dict[str, CredentialMatch] = {}
        self.fail = False
        self.delay = 0.0

    async def lookup(self, key_hash: str) -> CredentialMatch | None:
        self.calls.append(key_hash)
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.fail:
            raise CredentialLookupError("down")
        return self.answers.get(key_hash)


def match(consumer: str = "c1", expires_at: float | None = None) -> CredentialMatch:
    return CredentialMatch(
        CredentialInfo("cred-" + consumer, consumer), ConsumerInfo(consumer, consumer), expires_at
    )


async def test_hit_after_first_lookup() -> None:
    remote = CountingRemote()
    remote.answers["h1"] = match()
    cache = CachedCredentials(remote)
    assert await cache.lookup("h1") == match()
    assert await cache.lookup("h1") == match()
    assert remote.calls == ["h1"]


async def test_negative_entries_expire() -> None:
    remote = CountingRemote()
    cache = CachedCredentials(remote, negative_ttl=0.05)
    assert await cache.lookup("nope") is None
    assert await cache.lookup("nope") is None
    assert remote.calls == ["nope"]
    await asyncio.sleep(0.06)
    remote.answers["nope"] = match()
    assert await cache.lookup("nope") == match()


async def test_concurrent_misses_share_one_lookup() -> None:
    remote = CountingRemote()
    remote.answers["h"] = match()
    remote.delay = 0.02
    cache = CachedCredentials(remote)
    results = await asyncio.gather(*(cache.lookup("h") for _ in range(20)))
    assert all(r == match() for r in results)
    assert remote.calls == ["h"]


async def test_errors_are_not_cached() -> None:
    remote = CountingRemote()
    remote.fail = True
    cache = CachedCredentials(remote)
    with pytest.raises(CredentialLookupError):
        await cache.lookup("h")
    remote.fail = False
    remote.answers["h"] = match()
    assert await cache.lookup("h") == match()


async def test_invalidate_by_key_and_consumer() -> None:
    remote = CountingRemote()
    remote.answers.update({"a": match("c1"), "b": match("c2"), "c": match("c2")})
    cache = CachedCredentials(remote)
    for key in "abc":
        await cache.lookup(key)
    cache.invalidate(key_hashes=["a"])
    assert len(cache) == 2
    cache.invalidate(consumer_ids=["c2"])
    assert len(cache) == 0
    await cache.lookup("a")
    assert remote.calls.count("a") == 2


async def test_capacity_bounds_memory() -> None:
    remote = CountingRemote()
    cache = CachedCredentials(remote, capacity=10)
    for i in range(50):
        await cache.lookup(f"k{i}")
    assert len(cache) == 10


async def test_expired_credential_is_not_served_from_cache() -> None:
    import time

    remote = CountingRemote()
    remote.answers["h"] = match(expires_at=time.time() + 0.05)
    cache = CachedCredentials(remote)
    assert await cache.lookup("h") is not None
    await asyncio.sleep(0.06)
    remote.answers.pop("h")
    assert await cache.lookup("h") is None
