"""Admin tokens live in the database: with the database down, a token that is not the bootstrap
one gets a clear, retryable 503 (not a bare 500); the bootstrap token keeps working."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.exc import OperationalError

from control_plane.admin.auth import AdminAuthMiddleware, TokenResolver, token_check
from control_plane.store.protocol import AdminToken


class _DatabaseDown:
    def find_admin_token(self, token_hash: str) -> AdminToken | None:
        raise OperationalError("SELECT ...", {}, ConnectionRefusedError("connection refused"))

    def touch_admin_token(self, token_id: str) -> None:
        raise AssertionError("not reached")


def _client() -> TestClient:
    app = FastAPI()

    @app.get("/services")
    def services() -> dict[str, list[object]]:
        return {"data": []}

    resolver = TokenResolver(token_check("bootstrap-token"), _DatabaseDown(), lambda: 0)
    return TestClient(AdminAuthMiddleware(app, resolver))


def test_database_token_with_the_database_down_gets_503() -> None:
    reply = _client().get("/services", headers={"Kong-Admin-Token": "a-stored-token"})
    assert reply.status_code == 503
    assert reply.json() == {"message": "The database is unavailable; retry the request"}
    assert reply.headers["retry-after"] == "1"


def test_bootstrap_token_needs_no_database() -> None:
    reply = _client().get("/services", headers={"Kong-Admin-Token": "bootstrap-token"})
    assert reply.status_code == 200
    assert reply.json() == {"data": []}
