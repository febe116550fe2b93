"""Roles on `/config`: viewers may diff (dry run) and export sanitized; secrets and writes are
for editors and admins."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from control_plane.admin.roles import denial
from tests.control_plane.conftest import TOKEN

ADMIN = {"Kong-Admin-Token": TOKEN}
DOC = {
    "_format_version": "3.0",
    "consumers": [{"username": "alice", "keyauth_credentials": [{"key": "alice-key"}]}],
}


@pytest.mark.parametrize(
    "query",
    [b"dry_run=true", b"dry_run=TRUE", b"dry_run=1", b"dry_run=yes", b"select_tags=a&dry_run=true"],
)
def test_viewers_may_diff(query: bytes) -> None:
    assert denial("viewer", "POST", "/config", query) is None


@pytest.mark.parametrize(
    "query",
    [b"", b"dry_run=false", b"dry_run=", b"dry_run", b"dry_run=true&dry_run=false", b"dryrun=1"],
)
def test_viewers_may_not_sync(query: bytes) -> None:
    assert denial("viewer", "POST", "/config", query) == (
        "Forbidden: role 'viewer' cannot POST /config (read-only role)"
    )


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_a_dry_run_flag_does_not_open_other_writes(method: str) -> None:
    assert denial("viewer", method, "/config", b"dry_run=true") is not None
    assert denial("viewer", "POST", "/services", b"dry_run=true") is not None


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_viewers_export_only_sanitized(method: str) -> None:
    assert denial("viewer", method, "/config", b"sanitize=true") is None
    assert denial("viewer", method, "/config", "select_tags=a,b&sanitize=1") is None
    for query in (b"", b"sanitize=false", b"sanitize=true&sanitize=0", b"select_tags=a"):
        assert denial("viewer", method, "/config", query) == (
            f"Forbidden: role 'viewer' cannot {method} /config without sanitize=true "
            "(secrets: admin and editor roles only)"
        )


@pytest.mark.parametrize("role", ["admin", "editor"])
def test_editors_and_admins_export_and_sync_freely(role: str) -> None:
    for method in ("GET", "POST"):
        assert denial(role, method, "/config") is None  # type: ignore[arg-type]


def test_other_viewer_reads_are_unaffected() -> None:
    assert denial("viewer", "GET", "/services") is None
    assert denial("viewer", "GET", "/consumers", b"sanitize=false") is None


def _viewer(client: TestClient) -> dict[str, str]:
    made = client.post("/admin-tokens", json={"name": "v", "role": "viewer"}, headers=ADMIN)
    assert made.status_code == 201, made.text
    return {"Kong-Admin-Token": made.json()["token"]}


def test_a_viewer_cannot_export_key_hashes(client: TestClient) -> None:
    assert client.post("/config", json=DOC).status_code == 200
    viewer = _viewer(client)
    refused = client.get("/config", headers=viewer)
    assert refused.status_code == 403
    assert refused.json() == {
        "message": "Forbidden: role 'viewer' cannot GET /config without sanitize=true "
        "(secrets: admin and editor roles only)"
    }
    editor_token = client.post(
        "/admin-tokens", json={"name": "e", "role": "editor"}, headers=ADMIN
    ).json()["token"]
    exported = client.get("/config", headers={"Kong-Admin-Token": editor_token})
    assert exported.status_code == 200
    key_hash = exported.json()["consumers"][0]["keyauth_credentials"][0]["key_hash"]
    assert key_hash.startswith("sha256:")
