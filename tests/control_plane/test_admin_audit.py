"""Admin API: `GET /audit-logs` (attribution, filters, pagination, redaction)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from fastapi.testclient import TestClient

from control_plane.admin.app import create_admin_app
from control_plane.store import Store
from gateway.plugins.base import Plugin
from tests.control_plane.conftest import TOKEN

ADMIN = {"Kong-Admin-Token": TOKEN}


@pytest.fixture
def api(store: Store, plugins: Mapping[str, Plugin[Any]]) -> Iterator[TestClient]:
    app = create_admin_app(store, TOKEN, lambda _event: None, plugins)
    with TestClient(app, headers=ADMIN) as client:
        yield client


def _entries(api: TestClient, **params: str | float) -> list[dict[str, Any]]:
    response = api.get("/audit-logs", params=params)
    assert response.status_code == 200, response.text
    return response.json()["data"]  # type: ignore[no-any-return]


def test_writes_are_attributed_to_the_token_and_request(api: TestClient) -> None:
    editor = api.post("/admin-tokens", json={"name": "deployer", "role": "editor"}).json()
    created = api.post(
        "/services",
        json={"name": "svc", "host": "h"},
        headers={"Kong-Admin-Token": editor["token"], "X-Request-Id": "req-1"},
    )
    assert created.status_code == 201
    api.patch("/services/svc", json={"port": 81}, headers={"X-Request-Id": "req-2"})
    entries = _entries(api, entity="services")
    by_request = {e["request_id"]: e for e in entries}
    create = by_request["req-1"]
    assert (create["actor"], create["action"], create["entity"]) == (
        "deployer",
        "create",
        "services",
    )
    assert (create["entity_id"], create["entity_name"]) == (created.json()["id"], "svc")
    assert create["diff"]["before"] is None and create["diff"]["after"]["host"] == "h"
    update = by_request["req-2"]
    assert (update["actor"], update["action"]) == ("bootstrap", "update")
    assert (update["diff"]["before"]["port"], update["diff"]["after"]["port"]) == (80, 81)
    assert isinstance(update["at"], float | int) and abs(update["at"] - time.time()) < 60


def test_filters(api: TestClient) -> None:
    api.post("/services", json={"name": "a", "host": "h"})
    api.post("/consumers", json={"username": "u"})
    api.delete("/consumers/u")
    assert {e["entity"] for e in _entries(api, entity="consumers")} == {"consumers"}
    assert [e["action"] for e in _entries(api, action="delete")] == ["delete"]
    assert len(_entries(api, actor="bootstrap", entity="services")) == 1
    assert _entries(api, actor="nobody") == []
    assert _entries(api, since=time.time() + 3600) == []
    assert len(_entries(api, until=time.time() + 3600, entity="consumers")) == 2
    iso = _entries(api, since="2000-01-01T00:00:00+00:00", entity="services")
    assert len(iso) == 1
    bad = api.get("/audit-logs", params={"action": "explode"})
    assert bad.status_code == 400
    assert bad.json()["fields"] == {"action": "expected one of: create, update, delete"}
    assert api.get("/audit-logs", params={"since": "yesterday"}).status_code == 400
    assert api.get("/audit-logs", params={"since": "nan"}).status_code == 400


def test_pagination(api: TestClient) -> None:
    for i in range(5):
        api.post("/services", json={"name": f"s{i}", "host": "h"})
    first = api.get("/audit-logs", params={"size": 2, "entity": "services"}).json()
    assert len(first["data"]) == 2
    assert first["next"].startswith("/audit-logs?offset=")
    assert "entity=services" in first["next"] and "size=2" in first["next"]
    seen = [e["id"] for e in first["data"]]
    page = first
    for _ in range(5):
        if page["next"] is None:
            break
        page = api.get(page["next"]).json()
        seen += [e["id"] for e in page["data"]]
    assert len(seen) == len(set(seen)) == 5
    assert api.get("/audit-logs", params={"size": 0}).json()["name"] == "invalid size"
    bad = api.get("/audit-logs", params={"offset": "garbage"})
    assert bad.status_code == 400
    assert bad.json()["name"] == "invalid offset"


def test_secrets_are_redacted_in_diffs(api: TestClient) -> None:
    api.post("/consumers", json={"username": "u"})
    api.post("/consumers/u/key-auth", json={"key": "super-secret-key"})
    api.post("/admin-tokens", json={"name": "ops", "role": "viewer"})
    text = api.get("/audit-logs").text
    assert "super-secret-key" not in text
    from gateway.credentials import hash_key

    assert hash_key("super-secret-key") not in text
    tokens = _entries(api, entity="admin_tokens")
    assert [(e["action"], e["entity_name"], e["actor"]) for e in tokens] == [
        ("create", "ops", "bootstrap")
    ]
