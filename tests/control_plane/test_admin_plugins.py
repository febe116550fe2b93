"""Admin API: plugins (validation with each plugin's config model, scopes, uniqueness)."""

from __future__ import annotations

from fastapi.testclient import TestClient


def test_config_is_stored_with_defaults_filled(client: TestClient) -> None:
    response = client.post("/plugins", json={"name": "key-auth", "config": {"key_names": ["k"]}})
    assert response.status_code == 201
    config = response.json()["config"]
    assert config["key_names"] == ["k"]
    assert config["key_in_header"] is True
    assert config["anonymous"] is None
    plugin_id = response.json()["id"]
    assert client.get(f"/plugins/{plugin_id}").json()["config"] == config


def test_patch_merges_config(client: TestClient) -> None:
    created = client.post("/plugins", json={"name": "key-auth", "config": {"key_names": ["k"]}})
    plugin_id = created.json()["id"]
    patched = client.patch(f"/plugins/{plugin_id}", json={"config": {"key_in_query": False}})
    assert patched.status_code == 200
    assert patched.json()["config"]["key_names"] == ["k"]
    assert patched.json()["config"]["key_in_query"] is False


def test_unknown_plugin_name(client: TestClient) -> None:
    response = client.post("/plugins", json={"name": "nope"})
    assert response.status_code == 400
    message = "plugin 'nope' not enabled; add it to the 'plugins' configuration property"
    assert response.json() == {
        "code": 2,
        "name": "schema violation",
        "message": f"schema violation (name: {message})",
        "fields": {"name": message},
    }


def test_bad_config_field_is_named_under_config(client: TestClient) -> None:
    response = client.post(
        "/plugins", json={"name": "key-auth", "config": {"key_in_header": "sometimes", "x": 1}}
    )
    assert response.status_code == 400
    assert response.json()["fields"] == {
        "config": {"key_in_header": "expected a boolean", "x": "unknown field"}
    }


def test_bad_lua_is_refused_with_kongs_message(client: TestClient) -> None:
    response = client.post(
        "/plugins", json={"name": "pre-function", "config": {"access": ["local x = ("]}}
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == 2
    assert body["fields"]["config"]["access"].startswith("error parsing pre-function:")
    assert body["message"].startswith("schema violation (config.access")


def test_one_plugin_per_name_and_scope(client: TestClient) -> None:
    client.post("/services", json={"name": "svc", "host": "h"})
    assert client.post("/services/svc/plugins", json={"name": "key-auth"}).status_code == 201
    assert client.post("/plugins", json={"name": "key-auth"}).status_code == 201
    dup = client.post("/services/svc/plugins", json={"name": "key-auth"})
    assert dup.status_code == 409
    svc_id = client.get("/services/svc").json()["id"]
    assert dup.json()["fields"] == {
        "name": "key-auth",
        "route": None,
        "service": {"id": svc_id},
        "consumer": None,
    }
    assert [p["service"] for p in client.get("/services/svc/plugins").json()["data"]] == [
        {"id": svc_id}
    ]
    assert len(client.get("/plugins").json()["data"]) == 2


def test_consumer_scope_is_refused_for_no_consumer_plugins(client: TestClient) -> None:
    client.post("/consumers", json={"username": "alice"})
    response = client.post("/consumers/alice/plugins", json={"name": "key-auth"})
    assert response.status_code == 400
    assert response.json()["fields"] == {"consumer": "value must be null"}


def test_deleting_a_route_deletes_its_plugins(client: TestClient) -> None:
    client.post("/routes", json={"name": "r", "paths": ["/"]})
    assert client.post("/routes/r/plugins", json={"name": "key-auth"}).status_code == 201
    assert client.delete("/routes/r").status_code == 204
    assert client.get("/plugins").json()["data"] == []
