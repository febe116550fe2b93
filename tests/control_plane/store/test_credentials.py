"""Contract: credential lookups by key hash (with ttl expiry) and the bulk iterator."""

from __future__ import annotations

import time

from control_plane.store import Store, Writer
from gateway.credentials import hash_key
from gateway.entities import Consumer, KeyAuthCredential, Ref
from tests.control_plane.store.ids import CONSUMER, CREDENTIAL, consumer_with_key


def test_lookup_finds_the_credential_and_its_consumer(store: Store) -> None:
    store.write(lambda w: consumer_with_key(w, "s3cret"))
    match = store.lookup_credential(hash_key("s3cret"))
    assert match is not None
    assert (match.credential.id, match.credential.consumer_id) == (CREDENTIAL, CONSUMER)
    assert (match.consumer.id, match.consumer.username, match.consumer.custom_id) == (
        CONSUMER,
        "alice",
        "A-1",
    )
    assert match.expires_at is None
    assert store.lookup_credential(hash_key("other")) is None


def test_lookup_reports_expiry_and_ignores_expired_keys(store: Store) -> None:
    later = int(time.time()) + 3600
    store.write(lambda w: consumer_with_key(w, "fresh", expires_at=later))
    match = store.lookup_credential(hash_key("fresh"))
    assert match is not None and match.expires_at == float(later)
    expired = KeyAuthCredential(
        consumer=Ref(id=CONSUMER), key_hash=hash_key("old"), expires_at=int(time.time()) - 1
    )
    store.write(lambda w: w.insert(expired))
    assert store.lookup_credential(hash_key("old")) is None


def test_lookup_follows_consumer_changes(store: Store) -> None:
    store.write(lambda w: consumer_with_key(w, "k"))
    renamed = Consumer(id=CONSUMER, username="alicia")
    store.write(lambda w: w.update(renamed))
    match = store.lookup_credential(hash_key("k"))
    assert match is not None and match.consumer.username == "alicia"
    store.write(lambda w: w.delete(Consumer, CONSUMER))
    assert store.lookup_credential(hash_key("k")) is None


def _many(w: Writer, count: int, expired_every: int) -> None:
    now = int(time.time())
    for i in range(count):
        consumer = Consumer(username=f"u{i}")
        w.insert(consumer)
        expires = now - 10 if i % expired_every == 0 else None
        w.insert(
            KeyAuthCredential(
                consumer=Ref(id=consumer.id), key_hash=hash_key(f"k{i}"), expires_at=expires
            )
        )


def test_iter_credentials_yields_every_live_key_in_batches(store: Store) -> None:
    store.write(lambda w: _many(w, 25, expired_every=5))
    batches = list(store.iter_credentials(batch_size=4))
    assert all(1 <= len(batch) <= 4 for batch in batches)
    found = {key_hash: match.consumer.username for batch in batches for key_hash, match in batch}
    expected = {hash_key(f"k{i}"): f"u{i}" for i in range(25) if i % 5 != 0}
    assert found == expected
    assert sum(len(batch) for batch in batches) == len(expected)  # no duplicates


def test_iter_credentials_on_an_empty_store_yields_nothing(store: Store) -> None:
    assert list(store.iter_credentials()) == []
