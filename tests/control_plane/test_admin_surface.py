"""Admin API: foreign-entity paths, schema endpoints, `GET /`, 405s and field rules."""

from __future__ import annotations

from fastapi.testclient import TestClient

SERVICE_ID = "3b7b6c1e-2f55-4a53-9a55-0c2a3f0b0001"


def test_route_service_get_patch_put_delete(client: TestClient) -> None:
    svc = client.post("/services", json={"name": "svc", "host": "h"}).json()
    client.post("/services/svc/routes", json={"name": "r", "paths": ["/"]})
    assert client.get("/routes/r/service").json()["id"] == svc["id"]
    patched = client.patch("/routes/r/service", json={"port": 8080})
    assert patched.status_code == 200 and patched.json()["port"] == 8080
    replaced = client.put("/routes/r/service", json={"host": "other"})
    assert replaced.status_code == 200
    assert (replaced.json()["id"], replaced.json()["host"], replaced.json()["port"]) == (
        svc["id"],
        "other",
        80,
    )
    deleted = client.delete("/routes/r/service")
    assert deleted.status_code == 405
    assert deleted.json() == {"message": "Method not allowed"}
    assert client.get(f"/services/{svc['id']}").json()["host"] == "other"


def test_put_route_service_creates_and_links_one(client: TestClient) -> None:
    client.post("/routes", json={"name": "lonely", "paths": ["/"]})
    assert client.get("/routes/lonely/service").status_code == 404
    assert client.delete("/routes/lonely/service").status_code == 404
    made = client.put("/routes/lonely/service", json={"name": "made", "host": "h"})
    assert made.status_code == 200
    assert client.get("/routes/lonely").json()["service"] == {"id": made.json()["id"]}
    assert client.get("/routes/nope/service").status_code == 404


def test_plugin_scope_paths(client: TestClient) -> None:
    client.post("/services", json={"name": "svc", "host": "h"})
    plugin = client.post("/services/svc/plugins", json={"name": "key-auth"}).json()
    assert client.get(f"/plugins/{plugin['id']}/service").json()["name"] == "svc"
    assert client.get(f"/plugins/{plugin['id']}/route").status_code == 404
    assert client.get(f"/services/svc/plugins/{plugin['id']}").status_code == 200
    put = client.put(
        f"/services/svc/plugins/{plugin['id']}", json={"name": "key-auth", "enabled": False}
    )
    assert put.status_code == 200 and put.json()["enabled"] is False


def test_plugin_schema_is_json_schema(client: TestClient) -> None:
    schema = client.get("/schemas/plugins/key-auth")
    assert schema.status_code == 200
    body = schema.json()
    assert body["type"] == "object"
    assert body["properties"]["key_in_header"] == {
        "default": True,
        "title": "Key In Header",
        "type": "boolean",
    }
    assert body["additionalProperties"] is False
    missing = client.get("/schemas/plugins/nope")
    assert missing.status_code == 404
    assert missing.json() == {"message": "No plugin named 'nope'"}
    entity = client.get("/schemas/services").json()
    assert "host" in entity["properties"]
    assert client.get("/schemas/widgets").json() == {"message": "No entity named 'widgets'"}


def test_validate_endpoints_check_without_storing(client: TestClient) -> None:
    ok = client.post("/schemas/plugins/validate", json={"name": "key-auth"})
    assert ok.status_code == 200
    assert ok.json() == {"message": "schema validation successful"}
    bad = client.post(
        "/schemas/plugins/validate", json={"name": "key-auth", "config": {"key_in_body": "x"}}
    )
    assert bad.status_code == 400
    assert bad.json()["fields"] == {"config": {"key_in_body": "expected a boolean"}}
    assert client.post("/schemas/services/validate", json={"host": "h"}).status_code == 200
    route = client.post("/schemas/routes/validate", json={"service": {"name": "x"}})
    assert route.status_code == 400 and "@entity" in route.json()["fields"]
    cred = client.post("/schemas/keyauth_credentials/validate", json={"key": "k"})
    assert cred.json()["fields"] == {"consumer": "required field missing"}
    assert client.get("/services").json()["data"] == []
    assert client.get("/plugins").json()["data"] == []


def test_root_describes_the_node(client: TestClient) -> None:
    client.post("/plugins", json={"name": "key-auth"})
    root = client.get("/").json()
    assert root["configuration"]["role"] == "control_plane"
    assert isinstance(root["version"], str) and root["node_id"]
    assert root["plugins"]["enabled_in_cluster"] == ["key-auth"]
    assert root["plugins"]["available_on_server"]["key-auth"]["priority"] == 1250
    enabled = client.get("/plugins/enabled").json()["enabled_plugins"]
    assert "key-auth" in enabled and "pre-function" in enabled


def test_wrong_methods_are_405(client: TestClient) -> None:
    for method, path in (
        ("DELETE", "/services"),
        ("PUT", "/routes"),
        ("POST", "/services/x"),
        ("POST", "/status"),
        ("PATCH", "/consumers"),
    ):
        response = client.request(method, path)
        assert response.status_code == 405, (method, path)
        assert response.json() == {"message": "Method not allowed"}


def test_route_field_rules(client: TestClient) -> None:
    mixed = client.post("/routes", json={"paths": ["/"], "protocols": ["http", "tcp"]})
    assert mixed.status_code == 400
    assert mixed.json()["fields"]["protocols"].startswith("these sets are mutually exclusive")
    host_header = client.post("/routes", json={"headers": {"Host": ["x"]}, "paths": ["/"]})
    assert set(host_header.json()["fields"]) == {"headers"}
    wildcard = client.post("/routes", json={"hosts": ["a.*.com"]})
    assert wildcard.json()["fields"] == {
        "hosts": "invalid wildcard: must be placed at leftmost or rightmost label"
    }
    grpc = client.post("/routes", json={"protocols": ["grpc"], "paths": ["/g"]})
    assert grpc.status_code == 201 and grpc.json()["strip_path"] is False
    grpc_methods = client.post(
        "/routes", json={"protocols": ["grpc"], "paths": ["/g2"], "methods": ["GET"]}
    )
    assert grpc_methods.json()["fields"] == {"methods": "value must be null"}


def test_service_and_consumer_field_rules(client: TestClient) -> None:
    tcp = client.post("/services", json={"host": "h", "protocol": "tcp", "path": "/x"})
    assert tcp.status_code == 400
    assert tcp.json()["fields"]["path"] == "value must be null"
    long_name = client.post("/consumers", json={"username": "u" * 256})
    assert long_name.json()["fields"] == {"username": "length must be at most 255"}
    nul = client.post("/consumers", json={"custom_id": "a\u0000b"})
    assert nul.status_code == 400


def test_deleting_a_consumer_removes_its_credentials_and_plugins(client: TestClient) -> None:
    client.post("/consumers", json={"username": "c"})
    client.post("/consumers/c/key-auth", json={"key": "k"})
    client.post("/plugins", json={"name": "key-auth"})
    assert client.delete("/consumers/c").status_code == 204
    assert client.get("/key-auths").json()["data"] == []
    assert len(client.get("/plugins").json()["data"]) == 1


def test_unstorable_strings_are_a_bad_body(client: TestClient) -> None:
    lone_surrogate = b'{"username": "\\ud800"}'
    response = client.post(
        "/consumers", content=lone_surrogate, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {"message": "Cannot parse JSON body"}
