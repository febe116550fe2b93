"""Admin API: authentication, body parsing and error shapes, info endpoints."""

from __future__ import annotations

from fastapi.testclient import TestClient

from control_plane.store import ChangeEvent
from tests.control_plane.conftest import TOKEN


def test_requests_without_the_admin_token_get_401(client: TestClient) -> None:
    for headers in ({"Kong-Admin-Token": ""}, {"Kong-Admin-Token": "wrong"}):
        response = client.get("/services", headers=headers)
        assert response.status_code == 401
        assert response.json() == {"message": "Unauthorized"}
    bare = client.get("/status", headers={"Kong-Admin-Token": "x", "Authorization": "Basic x"})
    assert bare.status_code == 401
    refused = client.post("/services", json={"host": "x"}, headers={"Kong-Admin-Token": "no"})
    assert refused.status_code == 401
    assert client.get("/services").json()["data"] == []


def test_bearer_token_is_accepted(client: TestClient) -> None:
    del client.headers["Kong-Admin-Token"]
    assert client.get("/services").status_code == 401
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    assert client.get("/services", headers=bearer).status_code == 200


def test_malformed_json(client: TestClient) -> None:
    response = client.post(
        "/services", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.json() == {"message": "Cannot parse JSON body"}


def test_missing_and_wrongly_typed_fields_are_named(client: TestClient) -> None:
    missing = client.post("/services", json={"name": "x"})
    assert missing.status_code == 400
    assert missing.json() == {
        "code": 2,
        "name": "schema violation",
        "message": "schema violation (host: required field missing)",
        "fields": {"host": "required field missing"},
    }
    wrong = client.post("/services", json={"host": "h", "port": "eighty", "retries": [1]})
    assert wrong.status_code == 400
    assert wrong.json()["fields"] == {
        "port": "expected an integer",
        "retries": "expected an integer",
    }
    assert wrong.json()["message"].startswith("2 schema violations (")
    typo = client.post("/routes", json={"paths": "/not-a-list"})
    assert typo.json()["fields"] == {"paths": "expected an array"}


def test_form_bodies_work_like_kong(client: TestClient) -> None:
    response = client.post("/services", data={"name": "f", "url": "http://h:81/p"})
    assert response.status_code == 201
    assert response.json()["port"] == 81
    route = client.post("/services/f/routes", data={"paths[]": "/x", "name": "fr"})
    assert route.status_code == 201
    assert route.json()["paths"] == ["/x"]


def test_not_found_and_method_not_allowed(client: TestClient) -> None:
    assert client.get("/nowhere").json() == {"message": "Not found"}
    response = client.delete("/services")
    assert response.status_code == 405
    assert response.json() == {"message": "Method not allowed"}


def test_bad_ids_never_cause_500(client: TestClient) -> None:
    response = client.post("/services", json={"id": "not-a-uuid", "host": "h"})
    assert response.status_code == 400
    assert response.json()["fields"] == {"id": "expected a valid UUID"}
    assert client.get("/plugins/not-a-uuid").status_code == 404
    assert client.get("/services", params={"offset": "!!!"}).status_code == 400


def test_root_and_status(client: TestClient) -> None:
    root = client.get("/").json()
    assert "key-auth" in root["plugins"]["available_on_server"]
    assert root["plugins"]["enabled_in_cluster"] == []
    status = client.get("/status")
    assert status.status_code == 200
    assert status.json()["database"] == {"reachable": True}


def test_reads_and_failed_writes_emit_no_event(
    client: TestClient, events: list[ChangeEvent]
) -> None:
    client.get("/services")
    client.post("/services", json={"name": "x"})
    assert events == []
    client.post("/services", json={"name": "x", "host": "h"})
    assert [e.revision for e in events] == [1]
