"""Admin API: admin tokens (create/list/revoke), roles, expiry and the bootstrap token."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from fastapi.testclient import TestClient

from control_plane.admin.app import create_admin_app
from control_plane.admin_tokens import TokenVerifier, hash_token
from control_plane.store import Store
from gateway.plugins.base import Plugin
from tests.control_plane.conftest import TOKEN


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    import time

    return Clock(time.time())


@pytest.fixture
def app_client(
    store: Store, plugins: Mapping[str, Plugin[Any]], clock: Clock
) -> Iterator[TestClient]:
    """A client without default credentials, over an app with a controllable clock."""
    app = create_admin_app(store, TOKEN, lambda _event: None, plugins, clock=clock)
    with TestClient(app) as client:
        yield client


ADMIN = {"Kong-Admin-Token": TOKEN}


def _token(client: TestClient, name: str, role: str, **extra: object) -> dict[str, Any]:
    response = client.post(
        "/admin-tokens", json={"name": name, "role": role, **extra}, headers=ADMIN
    )
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def _as(token: str) -> dict[str, str]:
    return {"Kong-Admin-Token": token}


def test_created_token_is_shown_once_and_stored_hashed(
    app_client: TestClient, store: Store
) -> None:
    created = _token(app_client, "ci", "editor")
    assert created["token"].startswith("lgadm_") and len(created["token"]) > 40
    assert (created["name"], created["role"], created["expires_at"]) == ("ci", "editor", None)
    assert set(created) == {
        "id",
        "name",
        "role",
        "created_at",
        "last_used_at",
        "expires_at",
        "token",
    }
    stored = store.list_admin_tokens()
    assert [t.token_hash for t in stored] == [hash_token(created["token"])]
    listed = app_client.get("/admin-tokens", headers=ADMIN).json()
    assert listed["next"] is None
    assert [t["name"] for t in listed["data"]] == ["ci"]
    assert "token" not in listed["data"][0] and "token_hash" not in listed["data"][0]
    assert hash_token(created["token"]) not in app_client.get("/admin-tokens", headers=ADMIN).text
    one = app_client.get("/admin-tokens/ci", headers=ADMIN)
    assert one.status_code == 200 and one.json()["id"] == created["id"]


def test_new_token_authenticates_with_either_header(app_client: TestClient) -> None:
    token = _token(app_client, "reader", "viewer")["token"]
    assert app_client.get("/services", headers=_as(token)).status_code == 200
    bearer = {"Authorization": f"Bearer {token}"}
    assert app_client.get("/services", headers=bearer).status_code == 200
    used = app_client.get("/admin-tokens/reader", headers=ADMIN).json()
    assert isinstance(used["last_used_at"], int)


def test_token_body_is_validated(app_client: TestClient) -> None:
    bad_role = app_client.post("/admin-tokens", json={"name": "x", "role": "root"}, headers=ADMIN)
    assert bad_role.status_code == 400
    assert bad_role.json()["code"] == 2
    assert bad_role.json()["fields"] == {"role": "expected one of: admin, editor, viewer"}
    missing = app_client.post("/admin-tokens", json={"role": "viewer"}, headers=ADMIN)
    assert missing.json()["fields"] == {"name": "required field missing"}
    ttl = app_client.post(
        "/admin-tokens", json={"name": "x", "role": "viewer", "ttl": 0}, headers=ADMIN
    )
    assert ttl.status_code == 400 and set(ttl.json()["fields"]) == {"ttl"}
    _token(app_client, "dup", "viewer")
    dup = app_client.post("/admin-tokens", json={"name": "dup", "role": "admin"}, headers=ADMIN)
    assert dup.status_code == 409
    assert dup.json()["fields"] == {"name": "dup"}


def test_revoked_token_stops_working(app_client: TestClient) -> None:
    created = _token(app_client, "temp", "admin")
    assert app_client.get("/services", headers=_as(created["token"])).status_code == 200
    assert app_client.delete("/admin-tokens/temp", headers=ADMIN).status_code == 204
    refused = app_client.get("/services", headers=_as(created["token"]))
    assert refused.status_code == 401
    assert refused.json() == {"message": "Unauthorized"}
    assert app_client.delete("/admin-tokens/temp", headers=ADMIN).status_code == 404
    by_id = _token(app_client, "temp2", "viewer")
    assert app_client.delete(f"/admin-tokens/{by_id['id']}", headers=ADMIN).status_code == 204
    assert app_client.get("/admin-tokens", headers=ADMIN).json()["data"] == []


def test_token_expires_after_its_ttl(app_client: TestClient, clock: Clock) -> None:
    created = _token(app_client, "short", "viewer", ttl=60)
    assert created["expires_at"] - created["created_at"] == 60
    assert app_client.get("/services", headers=_as(created["token"])).status_code == 200
    clock.now += 61
    assert app_client.get("/services", headers=_as(created["token"])).status_code == 401


# Every write route of the Admin API, with a body where one is needed.
WRITES: list[tuple[str, str]] = [
    ("POST", "/services"),
    ("PATCH", "/services/s"),
    ("PUT", "/services/s"),
    ("DELETE", "/services/s"),
    ("POST", "/services/s/routes"),
    ("PATCH", "/services/s/routes/r"),
    ("PUT", "/services/s/routes/r"),
    ("DELETE", "/services/s/routes/r"),
    ("POST", "/services/s/plugins"),
    ("PATCH", "/services/s/plugins/00000000-0000-4000-8000-000000000001"),
    ("PUT", "/services/s/plugins/00000000-0000-4000-8000-000000000001"),
    ("DELETE", "/services/s/plugins/00000000-0000-4000-8000-000000000001"),
    ("POST", "/routes"),
    ("PATCH", "/routes/r"),
    ("PUT", "/routes/r"),
    ("DELETE", "/routes/r"),
    ("POST", "/routes/r/plugins"),
    ("PATCH", "/routes/r/service"),
    ("PUT", "/routes/r/service"),
    ("DELETE", "/routes/r/service"),
    ("POST", "/consumers"),
    ("PATCH", "/consumers/c"),
    ("PUT", "/consumers/c"),
    ("DELETE", "/consumers/c"),
    ("POST", "/consumers/c/key-auth"),
    ("PATCH", "/consumers/c/key-auth/k"),
    ("PUT", "/consumers/c/key-auth/k"),
    ("DELETE", "/consumers/c/key-auth/k"),
    ("POST", "/consumers/c/plugins"),
    ("PATCH", "/key-auths/k"),
    ("PUT", "/key-auths/k"),
    ("DELETE", "/key-auths/k"),
    ("POST", "/plugins"),
    ("PATCH", "/plugins/00000000-0000-4000-8000-000000000001"),
    ("PUT", "/plugins/00000000-0000-4000-8000-000000000001"),
    ("DELETE", "/plugins/00000000-0000-4000-8000-000000000001"),
    ("POST", "/config"),
]
TOKEN_ROUTES: list[tuple[str, str]] = [
    ("GET", "/admin-tokens"),
    ("POST", "/admin-tokens"),
    ("GET", "/admin-tokens/someone"),
    ("DELETE", "/admin-tokens/someone"),
    ("GET", "/audit-logs"),
]


@pytest.mark.parametrize(("method", "path"), WRITES)
def test_viewer_cannot_write(app_client: TestClient, method: str, path: str) -> None:
    token = _token(app_client, "v", "viewer")["token"]
    response = app_client.request(method, path, json={"host": "h"}, headers=_as(token))
    assert response.status_code == 403
    assert response.json() == {
        "message": f"Forbidden: role 'viewer' cannot {method} {path} (read-only role)"
    }


def test_viewer_writes_change_nothing_and_reads_work(app_client: TestClient) -> None:
    token = _token(app_client, "v", "viewer")["token"]
    app_client.post("/services", json={"name": "s", "host": "h"}, headers=_as(token))
    assert app_client.get("/services", headers=_as(token)).json()["data"] == []
    for path in ("/", "/status", "/plugins/enabled", "/schemas/plugins/key-auth", "/key-auths"):
        assert app_client.get(path, headers=_as(token)).status_code == 200, path
    check = app_client.post("/schemas/services/validate", json={"host": "h"}, headers=_as(token))
    assert check.status_code == 200


@pytest.mark.parametrize("role", ["viewer", "editor"])
@pytest.mark.parametrize(("method", "path"), TOKEN_ROUTES)
def test_only_admins_manage_tokens_and_read_the_audit_log(
    app_client: TestClient, role: str, method: str, path: str
) -> None:
    token = _token(app_client, "t", role)["token"]
    response = app_client.request(method, path, headers=_as(token))
    assert response.status_code == 403
    assert response.json()["message"] == (
        f"Forbidden: role '{role}' cannot {method} {path} (admin role only)"
    )


def test_editor_writes_entities_and_admin_tokens_manage_tokens(app_client: TestClient) -> None:
    editor = _as(_token(app_client, "ed", "editor")["token"])
    assert (
        app_client.post("/services", json={"name": "s", "host": "h"}, headers=editor).status_code
        == 201
    )
    assert app_client.patch("/services/s", json={"port": 81}, headers=editor).status_code == 200
    assert app_client.delete("/services/s", headers=editor).status_code == 204
    admin = _as(_token(app_client, "ad", "admin")["token"])
    made = app_client.post("/admin-tokens", json={"name": "x", "role": "viewer"}, headers=admin)
    assert made.status_code == 201
    assert app_client.get("/audit-logs", headers=admin).status_code == 200


def test_callable_bootstrap_verifier_is_the_admin(
    store: Store, plugins: Mapping[str, Plugin[Any]]
) -> None:
    verifier = TokenVerifier(frozenset({hash_token("boot")}))
    app = create_admin_app(store, verifier, lambda _event: None, plugins)
    with TestClient(app) as client:
        assert client.get("/services", headers=_as("boot")).status_code == 200
        assert client.get("/services", headers=_as("nope")).status_code == 401
        assert client.get("/services").status_code == 401
        created = client.post(
            "/admin-tokens", json={"name": "n", "role": "viewer"}, headers=_as("boot")
        )
        assert created.status_code == 201


def test_responses_carry_a_request_id(app_client: TestClient) -> None:
    response = app_client.get("/services", headers={**ADMIN, "X-Request-Id": "abc-123"})
    assert response.headers["X-Kong-Admin-Request-ID"] == "abc-123"
    generated = app_client.get("/services", headers=ADMIN).headers["X-Kong-Admin-Request-ID"]
    assert len(generated) == 32
    unauthorized = app_client.get("/services")
    assert unauthorized.headers["X-Kong-Admin-Request-ID"]
