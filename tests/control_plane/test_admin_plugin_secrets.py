"""Provider keys in plugin configs: admins and editors read them (as in Kong), viewers never do."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.control_plane.conftest import TOKEN
from tests.control_plane.test_admin_tokens import ADMIN, _as, _token, app_client, clock

__all__ = ["app_client", "clock"]  # fixtures

PROVIDER_KEY = "Bearer sk-provider-secret-123"
CONFIG = {
    "targets": [
        {
            "route_type": "llm/v1/chat",
            "auth": {"header_name": "Authorization", "header_value": PROVIDER_KEY},
            "model": {"provider": "openai", "name": "gpt-4o"},
        }
    ]
}


def test_viewers_get_provider_keys_masked(app_client: TestClient) -> None:
    created = app_client.post(
        "/plugins", json={"name": "ai-proxy-advanced", "config": CONFIG}, headers=ADMIN
    )
    assert created.status_code == 201, created.text
    plugin_id = created.json()["id"]
    viewer = _as(_token(app_client, "reader", "viewer")["token"])
    editor = _as(_token(app_client, "writer", "editor")["token"])

    for path in ("/plugins", f"/plugins/{plugin_id}"):
        seen = app_client.get(path, headers=viewer)
        assert seen.status_code == 200
        assert PROVIDER_KEY not in seen.text
        assert "[redacted:" in seen.text
        assert "gpt-4o" in seen.text  # the rest of the config stays readable

    for headers in (ADMIN, editor, {"Kong-Admin-Token": TOKEN}):
        full = app_client.get(f"/plugins/{plugin_id}", headers=headers)
        assert full.json()["config"]["targets"][0]["auth"]["header_value"] == PROVIDER_KEY


def _with_header_value(value: str) -> dict[str, object]:
    target = {
        **CONFIG["targets"][0],
        "auth": {"header_name": "Authorization", "header_value": value},
    }
    return {"targets": [target]}


def test_a_vault_reference_is_stored_as_written(app_client: TestClient) -> None:
    reference = "{vault://env/openai-auth-header}"
    created = app_client.post(
        "/plugins",
        json={"name": "ai-proxy-advanced", "config": _with_header_value(reference)},
        headers=ADMIN,
    )
    assert created.status_code == 201, created.text
    read = app_client.get(f"/plugins/{created.json()['id']}", headers=ADMIN)
    assert read.json()["config"]["targets"][0]["auth"]["header_value"] == reference


def test_a_vault_reference_no_data_plane_can_resolve_is_a_schema_violation(
    app_client: TestClient,
) -> None:
    cases = {
        "{vault://aws/openai-key}": "vault 'aws' is not available",
        "{vault://env}": "a vault name and a resource",
        "{vault://env/openai-key?ttl=60}": "unknown option 'ttl'",
        "{vault://env/lockgate-admin-token}": "Lockgate's own settings",
    }
    for reference, says in cases.items():
        refused = app_client.post(
            "/plugins",
            json={"name": "ai-proxy-advanced", "config": _with_header_value(reference)},
            headers=ADMIN,
        )
        assert refused.status_code == 400, refused.text
        body = refused.json()
        assert body["name"] == "schema violation"
        message = body["fields"]["config"]["targets"]["auth"]["header_value"]
        assert message.startswith(f"invalid vault reference: {reference}: ")
        assert says in message
        assert "config.targets.0.auth.header_value" in body["message"]
    assert app_client.get("/plugins", headers=ADMIN).json()["data"] == []
