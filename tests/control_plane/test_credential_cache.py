"""The control plane's Redis write-through and bulk warm-up, against a real store and Redis."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from control_plane.credential_cache import CredentialWriteThrough
from control_plane.store import Store, Writer
from control_plane.store.events import ChangeEvent
from gateway.credentials import CredentialMatch, hash_key
from gateway.entities import Consumer, KeyAuthCredential, Ref
from gateway.redis_credential_records import DEFAULT_PREFIX, WARM_MARKER, decode, open_redis

if TYPE_CHECKING:  # imported by pytest_plugins, so that pytest can rewrite its asserts
    from tests.services.redis import RedisServer


def add_consumer(store: Store, name: str, key: str) -> tuple[str, ChangeEvent]:
    consumer = Consumer(username=name)

    def write(w: Writer) -> None:
        w.insert(consumer)
        w.insert(KeyAuthCredential(consumer=Ref(id=consumer.id), key_hash=hash_key(key)))

    _, event = store.write(write)
    assert event is not None
    return consumer.id, event


def stored(server: RedisServer, key: str) -> CredentialMatch | str | None:
    """What Redis holds for a key: its credential, None for a tombstone, or "absent"."""
    raw = server.get(DEFAULT_PREFIX + hash_key(key))
    return "absent" if raw is None else decode(raw)


def ttl(server: RedisServer, key: str) -> int:
    return server.ttl(DEFAULT_PREFIX + hash_key(key))


def credential_id(store: Store, key: str) -> str:
    cred = store.read(lambda r: r.find(KeyAuthCredential, "key_hash", hash_key(key)))
    assert cred is not None
    return cred.id


async def start_warm(cache: CredentialWriteThrough) -> None:
    """Start the write-through and wait for its first warm-up."""
    await cache.start()
    await asyncio.wait_for(cache.warmed.wait(), 5)


async def eventually(check: Callable[[], bool], timeout_s: float = 3.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.01)


@pytest.fixture
async def cache(store: Store, redis_server: RedisServer) -> AsyncIterator[CredentialWriteThrough]:
    writer = CredentialWriteThrough(
        open_redis(redis_server.url, timeout_s=0.2),
        store.lookup_credential,
        store.iter_credentials,
        ttl_s=3600,
        tombstone_ttl_s=30,
        check_interval_s=0.05,
        batch_size=7,
    )
    yield writer
    await writer.stop()


async def test_start_warms_redis_with_every_credential(
    store: Store, redis_server: RedisServer, cache: CredentialWriteThrough
) -> None:
    for i in range(20):
        add_consumer(store, f"user{i}", f"key{i}")
    await start_warm(cache)
    assert cache.last_warm_count == 20
    for i in range(20):
        match = stored(redis_server, f"key{i}")
        assert isinstance(match, CredentialMatch)
        assert match.consumer.username == f"user{i}"
        assert 3500 < ttl(redis_server, f"key{i}") <= 3600
    assert redis_server.get(WARM_MARKER) is not None


async def test_a_new_credential_is_written_through(
    store: Store, redis_server: RedisServer, cache: CredentialWriteThrough
) -> None:
    await start_warm(cache)
    consumer_id, event = add_consumer(store, "alice", "alice-key")
    cache.on_change(event)
    await eventually(lambda: stored(redis_server, "alice-key") != "absent")
    match = stored(redis_server, "alice-key")
    assert isinstance(match, CredentialMatch) and match.consumer.id == consumer_id


async def test_deleting_a_credential_leaves_a_tombstone(
    store: Store, redis_server: RedisServer, cache: CredentialWriteThrough
) -> None:
    add_consumer(store, "alice", "alice-key")
    await start_warm(cache)
    cred_id = credential_id(store, "alice-key")
    _, event = store.write(lambda w: w.delete(KeyAuthCredential, cred_id))
    assert event is not None
    cache.on_change(event)
    await eventually(lambda: stored(redis_server, "alice-key") is None)
    assert 0 < ttl(redis_server, "alice-key") <= 30


async def test_deleting_a_consumer_tombstones_its_keys_and_updating_it_rewrites_them(
    store: Store, redis_server: RedisServer, cache: CredentialWriteThrough
) -> None:
    alice, _ = add_consumer(store, "alice", "alice-key")
    bob, _ = add_consumer(store, "bob", "bob-key")
    await start_warm(cache)
    _, renamed = store.write(lambda w: w.update(Consumer(id=bob, username="robert")))
    _, deleted = store.write(lambda w: w.delete(Consumer, alice))
    assert renamed is not None and deleted is not None
    cache.on_change(renamed)
    cache.on_change(deleted)

    def done() -> bool:
        bob_match = stored(redis_server, "bob-key")
        return (
            stored(redis_server, "alice-key") is None
            and isinstance(bob_match, CredentialMatch)
            and bob_match.consumer.username == "robert"
        )

    await eventually(done)


async def test_on_change_is_safe_from_another_thread(
    store: Store, redis_server: RedisServer, cache: CredentialWriteThrough
) -> None:
    await cache.start()
    _, event = add_consumer(store, "alice", "alice-key")
    thread = threading.Thread(target=cache.on_change, args=(event,))
    thread.start()
    thread.join()
    await eventually(lambda: isinstance(stored(redis_server, "alice-key"), CredentialMatch))


async def test_a_write_through_that_failed_is_retried_when_redis_answers_again(
    store: Store, redis_server: RedisServer, cache: CredentialWriteThrough
) -> None:
    add_consumer(store, "alice", "alice-key")
    await start_warm(cache)
    cred_id = credential_id(store, "alice-key")
    with redis_server.paused():  # Redis hangs: the write-through times out
        _, event = store.write(lambda w: w.delete(KeyAuthCredential, cred_id))
        assert event is not None
        cache.on_change(event)
        await asyncio.sleep(0.5)
    await eventually(lambda: stored(redis_server, "alice-key") is None)


async def test_redis_restarting_empty_is_warmed_again(
    store: Store, redis_server: RedisServer, cache: CredentialWriteThrough
) -> None:
    add_consumer(store, "alice", "alice-key")
    await start_warm(cache)
    cache.warmed.clear()
    with redis_server.stopped():
        add_consumer(store, "bob", "bob-key")  # written while Redis is down, event lost
        await asyncio.sleep(0.2)
    await asyncio.wait_for(cache.warmed.wait(), 5)
    assert isinstance(stored(redis_server, "alice-key"), CredentialMatch)
    assert isinstance(stored(redis_server, "bob-key"), CredentialMatch)


async def test_a_key_deleted_during_warm_up_is_not_left_behind(
    store: Store, redis_server: RedisServer
) -> None:
    add_consumer(store, "alice", "alice-key")
    cred_id = credential_id(store, "alice-key")
    writer: CredentialWriteThrough

    def batches(batch_size: int) -> Iterator[list[tuple[str, CredentialMatch]]]:
        before = list(store.iter_credentials(batch_size))  # read before the deletion...
        _, event = store.write(lambda w: w.delete(KeyAuthCredential, cred_id))
        assert event is not None
        writer.on_change(event)  # ...whose write-through runs while the batch is in flight
        time.sleep(0.05)
        yield from before

    writer = CredentialWriteThrough(
        open_redis(redis_server.url, timeout_s=0.2),
        store.lookup_credential,
        batches,
        check_interval_s=60,
    )
    try:
        await writer.start()
        await asyncio.wait_for(writer.warmed.wait(), 5)
        await eventually(lambda: stored(redis_server, "alice-key") is None)
    finally:
        await writer.stop()
