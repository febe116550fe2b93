"""Admin API: consumers and key-auth credentials, and the change events their writes emit."""

from __future__ import annotations

from fastapi.testclient import TestClient

from control_plane.store import ChangeEvent, Store
from gateway.credentials import hash_key


def _alice(client: TestClient) -> dict[str, object]:
    response = client.post("/consumers", json={"username": "alice", "custom_id": "a-1"})
    assert response.status_code == 201
    return response.json()  # type: ignore[no-any-return]


def test_consumer_needs_username_or_custom_id(client: TestClient) -> None:
    response = client.post("/consumers", json={"tags": ["t"]})
    assert response.status_code == 400
    message = "at least one of these fields must be non-empty: 'custom_id', 'username'"
    assert response.json()["fields"] == {"@entity": [message]}


def test_consumer_crud_by_username_or_id(client: TestClient) -> None:
    alice = _alice(client)
    assert client.get("/consumers/alice").json()["id"] == alice["id"]
    assert client.get(f"/consumers/{alice['id']}").json()["username"] == "alice"
    assert client.patch("/consumers/alice", json={"tags": ["vip"]}).json()["tags"] == ["vip"]
    dup = client.post("/consumers", json={"custom_id": "a-1"})
    assert dup.status_code == 409
    assert dup.json()["fields"] == {"custom_id": "a-1"}


def test_generated_key_is_shown_once_and_only_its_hash_is_stored(
    client: TestClient, store: Store
) -> None:
    _alice(client)
    created = client.post("/consumers/alice/key-auth", json={})
    assert created.status_code == 201
    key = created.json()["key"]
    assert isinstance(key, str) and len(key) >= 32
    cred_id = created.json()["id"]
    for path in (
        "/consumers/alice/key-auth",
        "/key-auths",
    ):
        listed = client.get(path).json()["data"]
        assert [c["id"] for c in listed] == [cred_id]
        assert "key" not in listed[0] and "key_hash" not in listed[0]
    one = client.get(f"/consumers/alice/key-auth/{cred_id}").json()
    assert "key" not in one and "key_hash" not in one
    match = store.lookup_credential(hash_key(key))
    assert match is not None and match.consumer.username == "alice"


def test_given_key_ttl_and_duplicate(client: TestClient, store: Store) -> None:
    _alice(client)
    created = client.post("/consumers/alice/key-auth", json={"key": "my-key", "ttl": 3600})
    assert created.status_code == 201
    body = created.json()
    assert body["key"] == "my-key"
    assert body["ttl"] == 3600
    assert body["expires_at"] - body["created_at"] == 3600
    dup = client.post("/consumers/alice/key-auth", json={"key": "my-key"})
    assert dup.status_code == 409
    assert dup.json()["fields"] == {"key": "my-key"}
    assert dup.json()["message"] == "UNIQUE violation detected on '{key=\"my-key\"}'"


def test_credential_of_unknown_consumer_is_404(client: TestClient) -> None:
    assert client.post("/consumers/bob/key-auth", json={"key": "k"}).status_code == 404


def test_credential_events_carry_the_key_hash(
    client: TestClient, events: list[ChangeEvent]
) -> None:
    _alice(client)
    cred = client.post("/consumers/alice/key-auth", json={"key": "one"}).json()
    assert events[-1].key_hashes == {hash_key("one")}
    client.patch(f"/consumers/alice/key-auth/{cred['id']}", json={"key": "two"})
    assert events[-1].key_hashes == {hash_key("one"), hash_key("two")}
    before = events[-1].revision
    assert client.delete(f"/key-auths/{cred['id']}").status_code == 204
    assert events[-1].key_hashes == {hash_key("two")}
    assert events[-1].revision == before + 1


def test_consumer_delete_cascades_and_invalidates(
    client: TestClient, events: list[ChangeEvent], store: Store
) -> None:
    alice = _alice(client)
    client.post("/consumers/alice/key-auth", json={"key": "k1"})
    client.post("/consumers/alice/key-auth", json={"key": "k2"})
    assert client.delete("/consumers/alice").status_code == 204
    assert events[-1].consumer_ids == {alice["id"]}
    assert events[-1].key_hashes == {hash_key("k1"), hash_key("k2")}
    assert client.get("/key-auths").json()["data"] == []
    assert store.lookup_credential(hash_key("k1")) is None


def test_consumer_update_invalidates_its_credentials(
    client: TestClient, events: list[ChangeEvent]
) -> None:
    alice = _alice(client)
    client.post("/consumers/alice/key-auth", json={"key": "k1"})
    client.patch("/consumers/alice", json={"username": "alice2"})
    assert events[-1].consumer_ids == {alice["id"]}
    assert events[-1].key_hashes == {hash_key("k1")}
