"""Admin API: key-auth credentials (ttl, rotation, PUT, reads never showing a key)."""

from __future__ import annotations

import time

from fastapi.testclient import TestClient

from control_plane.store import ChangeEvent, Store
from gateway.credentials import hash_key


def _consumer(client: TestClient, name: str = "alice") -> str:
    response = client.post("/consumers", json={"username": name})
    assert response.status_code == 201
    return str(response.json()["id"])


def test_ttl_expires_the_key_and_reads_show_what_is_left(client: TestClient, store: Store) -> None:
    _consumer(client)
    long = client.post("/consumers/alice/key-auth", json={"key": "long", "ttl": 3600}).json()
    short = client.post("/consumers/alice/key-auth", json={"key": "short", "ttl": 1}).json()
    assert store.lookup_credential(hash_key("short")) is not None
    time.sleep(1.2)
    assert store.lookup_credential(hash_key("short")) is None
    assert store.lookup_credential(hash_key("long")) is not None
    read = client.get(f"/key-auths/{short['id']}").json()
    assert read["ttl"] == 0
    remaining = client.get(f"/consumers/alice/key-auth/{long['id']}").json()["ttl"]
    assert 3590 <= remaining < 3600


def test_bad_ttl_is_a_schema_violation(client: TestClient) -> None:
    _consumer(client)
    for ttl in (0, -5, "soon", 100_000_001):
        response = client.post("/consumers/alice/key-auth", json={"ttl": ttl})
        assert response.status_code == 400, ttl
        assert set(response.json()["fields"]) == {"ttl"}


def test_rotation_by_patch(client: TestClient, store: Store, events: list[ChangeEvent]) -> None:
    _consumer(client)
    cred = client.post("/consumers/alice/key-auth", json={"key": "old-key"}).json()
    rotated = client.patch(f"/key-auths/{cred['id']}", json={"key": "new-key"})
    assert rotated.status_code == 200
    assert rotated.json()["key"] == "new-key"  # the key just sent is echoed once
    assert rotated.json()["id"] == cred["id"]
    assert events[-1].key_hashes == {hash_key("old-key"), hash_key("new-key")}
    assert store.lookup_credential(hash_key("old-key")) is None
    assert store.lookup_credential(hash_key("new-key")) is not None
    again = client.get(f"/key-auths/{cred['id']}").json()
    assert "key" not in again and "key_hash" not in again
    tagged = client.patch(f"/key-auths/{cred['id']}", json={"tags": ["t"]}).json()
    assert "key" not in tagged
    assert store.lookup_credential(hash_key("new-key")) is not None


def test_key_is_usable_as_the_path_and_never_listed(client: TestClient) -> None:
    _consumer(client)
    cred = client.post("/consumers/alice/key-auth", json={"key": "by-key"}).json()
    assert client.get("/key-auths/by-key").json()["id"] == cred["id"]
    body = client.get("/key-auths").text + client.get("/consumers/alice/key-auth").text
    assert "by-key" not in body and hash_key("by-key") not in body


def test_put_on_key_auths_needs_a_consumer(client: TestClient, store: Store) -> None:
    consumer_id = _consumer(client)
    cred_id = "6f2f0f6c-7d6b-4f7e-9a37-54b7c7c2d001"
    missing = client.put(f"/key-auths/{cred_id}", json={"key": "k"})
    assert missing.status_code == 400
    assert missing.json()["fields"] == {"consumer": "required field missing"}
    made = client.put(f"/key-auths/{cred_id}", json={"key": "k", "consumer": {"id": consumer_id}})
    assert made.status_code == 200
    assert made.json()["id"] == cred_id and made.json()["key"] == "k"
    by_name = client.put(
        f"/key-auths/{cred_id}", json={"key": "k2", "consumer": {"username": "alice"}}
    )
    assert by_name.status_code == 200
    assert store.lookup_credential(hash_key("k")) is None
    assert store.lookup_credential(hash_key("k2")) is not None


def test_credential_consumer_endpoint(client: TestClient) -> None:
    consumer_id = _consumer(client)
    cred = client.post("/consumers/alice/key-auth", json={}).json()
    owner = client.get(f"/key-auths/{cred['id']}/consumer")
    assert owner.status_code == 200 and owner.json()["id"] == consumer_id
    assert client.get("/key-auths/unknown/consumer").status_code == 404
