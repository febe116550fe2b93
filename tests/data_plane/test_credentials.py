from __future__ import annotations

import asyncio
import time

import pytest

from data_plane.credentials import CachedCredentials, SharedCacheUnavailable
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
        if self.fail:
            raise CredentialLookupError("down")
        answer = self.answers.get(key_hash)  # read now; the reply then takes `delay` to arrive
        if self.delay:
            await asyncio.sleep(self.delay)
        return answer


class FakeShared:
    """L2 over a dict: None values are tombstones."""

    def __init__(self) -> None:
        self.records: dict[str, CredentialMatch | None] = {}
        self.gets: list[str] = []
        self.puts: list[str] = []
        self.down = False

    async def get(self, key_hash: str) -> tuple[bool, CredentialMatch | None]:
        self.gets.append(key_hash)
        if self.down:
            raise SharedCacheUnavailable("down")
        if key_hash not in self.records:
            return False, None
        return True, self.records[key_hash]

    def put(self, key_hash: str, match: CredentialMatch) -> None:
        self.puts.append(key_hash)
        self.records.setdefault(key_hash, match)


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
    remote = CountingRemote()
    remote.answers["h"] = match(expires_at=time.time() + 0.05)
    cache = CachedCredentials(remote)
    assert await cache.lookup("h") is not None
    await asyncio.sleep(0.06)
    remote.answers.pop("h")
    assert await cache.lookup("h") is None


async def test_l2_hit_answers_without_the_control_plane() -> None:
    remote, shared = CountingRemote(), FakeShared()
    shared.records["h"] = match()
    cache = CachedCredentials(remote, shared=shared)
    assert await cache.lookup("h") == match()
    assert await cache.lookup("h") == match()
    assert (shared.gets, remote.calls) == (["h"], [])


async def test_l2_tombstone_is_a_known_miss() -> None:
    remote, shared = CountingRemote(), FakeShared()
    shared.records["h"] = None
    remote.answers["h"] = match()  # never asked: the tombstone is authoritative
    cache = CachedCredentials(remote, shared=shared)
    assert await cache.lookup("h") is None
    assert remote.calls == []


async def test_l2_miss_asks_the_control_plane_and_writes_back() -> None:
    remote, shared = CountingRemote(), FakeShared()
    remote.answers["h"] = match()
    cache = CachedCredentials(remote, shared=shared)
    assert await cache.lookup("h") == match()
    assert remote.calls == ["h"]
    assert shared.puts == ["h"]
    assert await cache.lookup("unknown") is None
    assert shared.puts == ["h"]  # negative answers stay in L1 only


async def test_l2_down_falls_back_to_the_control_plane() -> None:
    remote, shared = CountingRemote(), FakeShared()
    remote.answers["h"] = match()
    shared.down = True
    cache = CachedCredentials(remote, shared=shared)
    assert await cache.lookup("h") == match()
    assert remote.calls == ["h"]


async def test_invalidated_keys_skip_l2_for_a_while() -> None:
    # the push can beat the control plane's own Redis write: L2 may still hold the old record
    remote, shared = CountingRemote(), FakeShared()
    shared.records["h"] = match()
    cache = CachedCredentials(remote, shared=shared, bypass_s=0.05, negative_ttl=0.0)
    assert await cache.lookup("h") == match()
    cache.invalidate(key_hashes=["h"])
    assert await cache.lookup("h") is None  # the control plane's answer, not L2's stale one
    assert remote.calls == ["h"]
    await asyncio.sleep(0.06)
    shared.records["h"] = None  # the control plane's tombstone has landed
    assert await cache.lookup("h") is None
    assert remote.calls == ["h"]


async def test_a_lookup_racing_an_invalidation_is_not_cached() -> None:
    remote, shared = CountingRemote(), FakeShared()
    remote.answers["h"] = match()
    remote.delay = 0.02
    cache = CachedCredentials(remote, shared=shared)
    lookup = asyncio.create_task(cache.lookup("h"))
    await asyncio.sleep(0.005)
    cache.invalidate(key_hashes=["h"])  # the key was deleted while the answer was in flight
    del remote.answers["h"]
    assert await lookup == match()
    assert shared.puts == []  # not written back to L2
    assert await cache.lookup("h") is None  # and not cached in L1
    assert remote.calls == ["h", "h"]


async def test_cached_keys_outlive_their_ttl_while_backends_are_down() -> None:
    remote = CountingRemote()
    remote.answers["h"] = match()
    cache = CachedCredentials(remote, positive_ttl=0.01, stale_if_error=60)
    assert await cache.lookup("h") == match()
    await asyncio.sleep(0.02)
    remote.fail = True
    assert await cache.lookup("h") == match()
    with pytest.raises(CredentialLookupError):
        await cache.lookup("unknown")


async def test_stale_entries_are_not_served_past_stale_if_error() -> None:
    remote = CountingRemote()
    remote.answers["h"] = match()
    cache = CachedCredentials(remote, positive_ttl=0.01, stale_if_error=0.01)
    await cache.lookup("h")
    await asyncio.sleep(0.03)
    remote.fail = True
    with pytest.raises(CredentialLookupError):
        await cache.lookup("h")


async def test_invalidated_keys_are_not_served_stale() -> None:
    remote = CountingRemote()
    remote.answers["h"] = match()
    cache = CachedCredentials(remote, stale_if_error=60)
    await cache.lookup("h")
    cache.invalidate(consumer_ids=["c1"])
    remote.fail = True
    with pytest.raises(CredentialLookupError):
        await cache.lookup("h")


async def test_a_key_in_use_is_reloaded_in_the_background_before_its_ttl() -> None:
    remote = CountingRemote()
    remote.answers["h"] = match()
    cache = CachedCredentials(remote, positive_ttl=0.3, jitter=0, refresh_after=0.5)
    await cache.lookup("h")
    await asyncio.sleep(0.18)  # past half the TTL
    remote.delay = 0.1
    began = time.perf_counter()
    assert await cache.lookup("h") == match()  # from L1, without waiting on the reload
    assert await cache.lookup("h") == match()
    assert time.perf_counter() - began < 0.05
    await asyncio.sleep(0)
    assert remote.calls == ["h", "h"]  # one reload, however many hits meanwhile
    remote.delay = 0.0
    await asyncio.sleep(0.2)  # the reload ended; the first entry's TTL (0.3 s) has passed
    assert await cache.lookup("h") == match()
    assert remote.calls == ["h", "h"]  # the reloaded entry answers


async def test_a_background_reload_sees_a_revoked_key() -> None:
    remote = CountingRemote()
    remote.answers["h"] = match()
    cache = CachedCredentials(remote, positive_ttl=0.2, jitter=0, refresh_after=0.5)
    await cache.lookup("h")
    await asyncio.sleep(0.12)
    del remote.answers["h"]  # revoked, and the push never came
    assert await cache.lookup("h") == match()  # the entry is within its TTL
    await asyncio.sleep(0.02)
    assert await cache.lookup("h") is None  # the reload cached the answer: gone
    assert remote.calls == ["h", "h"]


async def test_an_entry_is_never_served_past_its_ttl_while_its_reload_runs() -> None:
    remote = CountingRemote()
    remote.answers["h"] = match("c1")
    cache = CachedCredentials(remote, positive_ttl=0.1, jitter=0, refresh_after=0.5)
    await cache.lookup("h")
    await asyncio.sleep(0.06)
    remote.answers["h"] = match("c2")
    remote.delay = 0.2
    assert await cache.lookup("h") == match("c1")  # starts the reload (0.2 s)
    await asyncio.sleep(0.06)  # past the TTL: the next lookup waits for the reload
    began = time.perf_counter()
    assert await cache.lookup("h") == match("c2")
    assert time.perf_counter() - began > 0.05
    assert remote.calls == ["h", "h"]


async def test_a_failed_background_reload_keeps_the_entry_until_its_ttl() -> None:
    remote = CountingRemote()
    remote.answers["h"] = match()
    cache = CachedCredentials(
        remote, positive_ttl=0.2, jitter=0, refresh_after=0.5, stale_if_error=0
    )
    await cache.lookup("h")
    await asyncio.sleep(0.12)
    remote.fail = True
    assert await cache.lookup("h") == match()  # the reload fails in the background
    await asyncio.sleep(0.02)
    assert await cache.lookup("h") == match()  # still within the TTL
    assert remote.calls == ["h", "h"]  # one attempt, not one per hit
    await asyncio.sleep(0.1)
    with pytest.raises(CredentialLookupError):  # past the TTL: a miss, and the backends fail
        await cache.lookup("h")


async def test_ttl_jitter_spreads_the_expiry_of_keys_cached_together() -> None:
    remote = CountingRemote()
    keys = [f"k{n}" for n in range(200)]
    for key in keys:
        remote.answers[key] = match(key)
    # TTLs between 1 and 2 s; no reload ahead, so an expired key is a miss that asks the remote.
    cache = CachedCredentials(remote, positive_ttl=2.0, jitter=0.5, refresh_after=1.0)
    for key in keys:
        await cache.lookup(key)
    await asyncio.sleep(1.5)
    remote.calls.clear()
    for key in keys:
        assert await cache.lookup(key) == match(key)
    expired = len(remote.calls)
    assert 10 <= expired <= 190, f"{expired} of 200 keys expired at once"


async def test_close_cancels_background_reloads() -> None:
    remote = CountingRemote()
    remote.answers["h"] = match()
    cache = CachedCredentials(remote, positive_ttl=0.1, jitter=0, refresh_after=0.5)
    await cache.lookup("h")
    await asyncio.sleep(0.06)
    remote.delay = 30.0
    await cache.lookup("h")
    await asyncio.sleep(0)
    began = time.perf_counter()
    await asyncio.wait_for(cache.close(), 5)
    assert time.perf_counter() - began < 1
