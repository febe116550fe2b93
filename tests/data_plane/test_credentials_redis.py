"""The data plane's lookup chain against a real redis-server: L2 hits, write-backs, tombstones,
and Redis down or hanging (the circuit breaker sends lookups to the control plane)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import pytest

from data_plane.credentials import CachedCredentials
from data_plane.redis_credentials import CircuitBreaker, RedisCredentials
from gateway.context import ConsumerInfo, CredentialInfo
from gateway.credentials import CredentialLookupError, CredentialMatch, hash_key
from gateway.redis_credential_records import DEFAULT_PREFIX, TOMBSTONE, encode, open_redis
from tests.data_plane.test_credentials import CountingRemote

if TYPE_CHECKING:  # imported by pytest_plugins, so that pytest can rewrite its asserts
    from tests.services.redis import RedisServer


ALICE = CredentialMatch(
    CredentialInfo("cred-1", "cons-1"), ConsumerInfo("cons-1", "alice", "A-1"), None
)
KEY = hash_key("alice-key")


@pytest.fixture
async def redis(redis_server: RedisServer) -> AsyncIterator[RedisCredentials]:
    layer = RedisCredentials(
        open_redis(redis_server.url, timeout_s=0.1),
        timeout_s=0.1,
        breaker=CircuitBreaker(failure_threshold=2, cooldown_s=0.3),
    )
    yield layer
    await layer.close()


async def put_record(server: RedisServer, value: bytes) -> None:
    """Store `value` as the record of KEY, as the control plane does."""
    client = open_redis(server.url, timeout_s=1)
    await client.set(DEFAULT_PREFIX + KEY, value)
    await client.aclose()


def record(server: RedisServer, key_hash: str) -> str | None:
    reply = server.command("GET", DEFAULT_PREFIX + key_hash)
    assert reply is not None
    return None if reply == "$-1" else reply


async def test_a_redis_record_answers_without_the_control_plane(
    redis_server: RedisServer, redis: RedisCredentials
) -> None:
    await put_record(redis_server, encode(ALICE))
    remote = CountingRemote()
    chain = CachedCredentials(remote, shared=redis)
    assert await chain.lookup(KEY) == ALICE
    assert remote.calls == []


async def test_a_control_plane_answer_is_written_back_with_a_ttl(
    redis_server: RedisServer, redis: RedisCredentials
) -> None:
    remote = CountingRemote()
    remote.answers[KEY] = ALICE
    chain = CachedCredentials(remote, shared=redis)
    assert await chain.lookup(KEY) == ALICE
    await redis.drain()
    assert record(redis_server, KEY) is not None
    ttl = redis_server.command("TTL", DEFAULT_PREFIX + KEY)
    assert ttl is not None and 0 < int(ttl.lstrip(":")) <= 300
    # another data plane now answers from Redis
    other_remote = CountingRemote()
    other = CachedCredentials(other_remote, shared=redis)
    assert await other.lookup(KEY) == ALICE
    assert other_remote.calls == []


async def test_a_write_back_never_overwrites_a_tombstone(
    redis_server: RedisServer, redis: RedisCredentials
) -> None:
    await put_record(redis_server, TOMBSTONE)  # the control plane deleted the key
    redis.put(KEY, ALICE)  # an answer read before the deletion, arriving late
    await redis.drain()
    remote = CountingRemote()
    remote.answers[KEY] = ALICE
    chain = CachedCredentials(remote, shared=redis)
    assert await chain.lookup(KEY) is None
    assert remote.calls == []


async def test_an_expired_credential_in_redis_is_rejected(
    redis_server: RedisServer, redis: RedisCredentials
) -> None:
    old = CredentialMatch(ALICE.credential, ALICE.consumer, expires_at=time.time() - 1)
    await put_record(redis_server, encode(old))
    chain = CachedCredentials(CountingRemote(), shared=redis)
    assert await chain.lookup(KEY) is None


async def test_redis_down_falls_back_to_the_control_plane_then_recovers(
    redis_server: RedisServer, redis: RedisCredentials
) -> None:
    remote = CountingRemote()
    remote.answers[KEY] = ALICE
    with redis_server.stopped():
        # no L1 so every lookup walks the chain
        chain = CachedCredentials(remote, shared=redis, capacity=0)
        started = time.monotonic()
        for _ in range(20):
            assert await chain.lookup(KEY) == ALICE
        assert time.monotonic() - started < 1.0
        assert redis.breaker.is_open
    assert len(remote.calls) == 20
    # Redis is back (empty): after the cool-down the breaker lets a probe through
    await asyncio.sleep(0.35)
    assert await chain.lookup(KEY) == ALICE
    await redis.drain()
    assert not redis.breaker.is_open
    assert record(redis_server, KEY) is not None


async def test_a_hanging_redis_costs_one_short_timeout_per_lookup_until_the_breaker_opens(
    redis_server: RedisServer, redis: RedisCredentials
) -> None:
    remote = CountingRemote()
    remote.answers[KEY] = ALICE
    chain = CachedCredentials(remote, shared=redis, capacity=0)
    with redis_server.paused():
        timings = []
        for _ in range(5):
            started = time.monotonic()
            assert await chain.lookup(KEY) == ALICE
            timings.append(time.monotonic() - started)
    assert all(t < 0.5 for t in timings), timings
    assert all(t < 0.05 for t in timings[2:]), timings  # the breaker opened after 2 timeouts
    assert len(remote.calls) == 5


async def test_control_plane_down_redis_up_valid_keys_work_unknown_keys_cannot_be_checked(
    redis_server: RedisServer, redis: RedisCredentials
) -> None:
    await put_record(redis_server, encode(ALICE))
    remote = CountingRemote()
    remote.fail = True
    chain = CachedCredentials(remote, shared=redis)
    assert await chain.lookup(KEY) == ALICE
    with pytest.raises(CredentialLookupError):
        await chain.lookup(hash_key("never-seen"))


async def test_both_down_cached_keys_work_unknown_keys_cannot_be_checked(
    redis_server: RedisServer, redis: RedisCredentials
) -> None:
    remote = CountingRemote()
    remote.answers[KEY] = ALICE
    chain = CachedCredentials(remote, shared=redis, positive_ttl=0.01)
    assert await chain.lookup(KEY) == ALICE
    await asyncio.sleep(0.02)  # past its TTL: only stale-if-error keeps it
    remote.fail = True
    with redis_server.stopped():
        assert await chain.lookup(KEY) == ALICE
        with pytest.raises(CredentialLookupError):
            await chain.lookup(hash_key("never-seen"))
