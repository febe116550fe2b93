"""Admin API: services and routes (Kong's paths, bodies and status codes)."""

from __future__ import annotations

from fastapi.testclient import TestClient


def _service(client: TestClient, **body: object) -> dict[str, object]:
    response = client.post("/services", json={"name": "svc", "host": "up.local", **body})
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def test_create_fills_kong_defaults(client: TestClient) -> None:
    svc = _service(client)
    assert svc["protocol"] == "http"
    assert svc["port"] == 80
    assert svc["retries"] == 5
    assert svc["connect_timeout"] == svc["read_timeout"] == svc["write_timeout"] == 60000
    assert svc["enabled"] is True
    assert isinstance(svc["created_at"], int)


def test_url_shorthand_sets_protocol_host_port_and_path(client: TestClient) -> None:
    response = client.post("/services", json={"name": "ai", "url": "https://api.openai.com/v1"})
    assert response.status_code == 201
    body = response.json()
    assert (body["protocol"], body["host"], body["port"], body["path"]) == (
        "https",
        "api.openai.com",
        443,
        "/v1",
    )
    plain = client.post("/services", json={"name": "p", "url": "http://h:8080"}).json()
    assert (plain["port"], plain["path"]) == (8080, None)


def test_read_by_id_or_name_update_and_delete(client: TestClient) -> None:
    svc = _service(client)
    assert client.get(f"/services/{svc['id']}").json()["name"] == "svc"
    assert client.get("/services/svc").json()["id"] == svc["id"]

    patched = client.patch("/services/svc", json={"port": 8443, "protocol": "https"})
    assert patched.status_code == 200
    assert (patched.json()["port"], patched.json()["host"]) == (8443, "up.local")

    assert client.delete("/services/svc").status_code == 204
    assert client.get("/services/svc").status_code == 404
    assert client.get("/services/svc").json() == {"message": "Not found"}


def test_put_creates_then_replaces(client: TestClient) -> None:
    created = client.put("/services/made-by-put", json={"host": "a"})
    assert created.status_code == 200
    assert created.json()["name"] == "made-by-put"
    replaced = client.put("/services/made-by-put", json={"host": "b", "retries": 1})
    assert replaced.json()["id"] == created.json()["id"]
    assert (replaced.json()["host"], replaced.json()["retries"]) == ("b", 1)
    assert len(client.get("/services").json()["data"]) == 1


def test_list_shape_and_pagination(client: TestClient) -> None:
    assert client.get("/services").json() == {"data": [], "next": None}
    for i in range(3):
        _service(client, name=f"s{i}")
    first = client.get("/services", params={"size": 2}).json()
    assert [s["name"] for s in first["data"]] == ["s0", "s1"]
    assert first["next"].startswith("/services?offset=")
    second = client.get("/services", params={"size": 2, "offset": first["offset"]}).json()
    assert [s["name"] for s in second["data"]] == ["s2"]
    assert second["next"] is None
    bad = client.get("/services", params={"size": 0})
    assert bad.status_code == 400
    assert bad.json()["name"] == "invalid size"


def test_nested_routes_belong_to_their_service(client: TestClient) -> None:
    svc = _service(client)
    _service(client, name="other")
    response = client.post("/services/svc/routes", json={"name": "r1", "paths": ["/chat"]})
    assert response.status_code == 201
    route = response.json()
    assert route["service"] == {"id": svc["id"]}
    assert route["strip_path"] is True
    assert route["protocols"] == ["http", "https"]
    client.post("/routes", json={"name": "loose", "paths": ["/x"]})
    assert [r["name"] for r in client.get("/services/svc/routes").json()["data"]] == ["r1"]
    assert client.get("/services/other/routes/r1").status_code == 404
    assert client.get("/services/svc/routes/r1").status_code == 200
    assert client.get("/services/nope/routes").status_code == 404


def test_route_service_by_name_and_unknown_reference(client: TestClient) -> None:
    svc = _service(client)
    by_name = client.post("/routes", json={"paths": ["/a"], "service": {"name": "svc"}})
    assert by_name.json()["service"] == {"id": svc["id"]}
    missing = "00000000-0000-4000-8000-000000000999"
    response = client.post("/routes", json={"paths": ["/b"], "service": {"id": missing}})
    assert response.status_code == 400
    assert response.json() == {
        "code": 4,
        "name": "foreign key violation",
        "message": f"the foreign key '{{id=\"{missing}\"}}' does not reference an existing "
        "'services' entity.",
        "fields": {"service": {"id": missing}},
    }


def test_route_needs_a_matching_field(client: TestClient) -> None:
    response = client.post("/routes", json={"name": "empty"})
    assert response.status_code == 400
    message = (
        "must set one of 'methods', 'hosts', 'headers', 'paths', 'snis' when 'protocols' is 'https'"
    )
    assert response.json()["fields"] == {"@entity": [message]}
    assert response.json()["message"] == f"schema violation ({message})"


def test_deleting_a_used_service_is_refused(client: TestClient) -> None:
    _service(client)
    client.post("/services/svc/routes", json={"paths": ["/"]})
    response = client.delete("/services/svc")
    assert response.status_code == 400
    assert response.json() == {
        "code": 4,
        "name": "foreign key violation",
        "message": "an existing 'routes' entity references this 'services' entity",
    }
    assert client.get("/services/svc").status_code == 200


def test_duplicate_name_is_409(client: TestClient) -> None:
    _service(client)
    response = client.post("/services", json={"name": "svc", "host": "x"})
    assert response.status_code == 409
    assert response.json() == {
        "code": 5,
        "name": "unique constraint violation",
        "message": "UNIQUE violation detected on '{name=\"svc\"}'",
        "fields": {"name": "svc"},
    }


def test_delete_of_unknown_entity_is_204(client: TestClient) -> None:
    assert client.delete("/routes/nothing").status_code == 204
