"""Redaction of secrets in audit diffs (no database)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from control_plane.store.redact import REDACTED, redact


class _Auth(BaseModel):
    user: str | None = None
    token: str | None = Field(default=None, json_schema_extra={"writeOnly": True})


class _Config(BaseModel):
    auth: _Auth | None = None
    backups: list[_Auth] = []
    by_name: dict[str, _Auth] = {}
    note: str = ""


def _schemas(name: str) -> dict[str, Any] | None:
    return _Config.model_json_schema() if name == "custom" else None


def _plugin(config: dict[str, Any], name: str = "custom") -> dict[str, Any]:
    return {"id": "p1", "name": name, "config": config}


def test_write_only_fields_are_redacted_through_refs_lists_and_maps() -> None:
    config = {
        "auth": {"user": "u", "token": "t1"},
        "backups": [{"user": "b", "token": "t2"}],
        "by_name": {"x": {"token": "t3"}},
        "note": "token",
    }
    out = redact("plugins", _plugin(config), _schemas)
    assert out is not None
    assert out["config"] == {
        "auth": {"user": "u", "token": REDACTED},
        "backups": [{"user": "b", "token": REDACTED}],
        "by_name": {"x": {"token": REDACTED}},
        "note": "token",
    }
    assert config["auth"] == {"user": "u", "token": "t1"}  # the input is left alone


def test_unset_secrets_stay_visible_as_unset() -> None:
    out = redact("plugins", _plugin({"auth": {"token": None}}), _schemas)
    assert out is not None and out["config"] == {"auth": {"token": None}}


def test_the_name_list_catches_secrets_of_unknown_plugins_at_any_depth() -> None:
    config = {"password": "p", "nested": [{"client_secret": "c", "api_key": "k", "user": "u"}]}
    out = redact("plugins", _plugin(config, name="not-installed"), _schemas)
    assert out is not None
    assert out["config"] == {
        "password": REDACTED,
        "nested": [{"client_secret": REDACTED, "api_key": REDACTED, "user": "u"}],
    }


def test_bundled_ai_proxy_advanced_marks_its_provider_keys() -> None:
    config = {"targets": [{"auth": {"param_name": "key", "param_value": "v", "header_value": "h"}}]}
    out = redact("plugins", _plugin(config, name="ai-proxy-advanced"))
    assert out is not None
    assert out["config"]["targets"][0]["auth"] == {
        "param_name": "key",
        "param_value": REDACTED,
        "header_value": REDACTED,
    }


def test_hashes_are_redacted_and_other_entities_untouched() -> None:
    assert redact("keyauth_credentials", {"id": "c", "key_hash": "abc"}) == {
        "id": "c",
        "key_hash": REDACTED,
    }
    assert redact("admin_tokens", {"name": "ci", "token_hash": "abc"}) == {
        "name": "ci",
        "token_hash": REDACTED,
    }
    service = {"id": "s", "name": "svc", "host": "h", "password": "not-a-plugin-field"}
    assert redact("services", service) == service
    assert redact("services", None) is None
