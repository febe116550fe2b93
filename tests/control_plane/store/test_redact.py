"""Redaction of secrets in audit diffs and declarative diffs (no database)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

from pydantic import BaseModel, Field

from control_plane.declarative_secrets import Redactor
from control_plane.store.redact import REDACTED, redact, redact_config
from gateway.plugins import registry


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


def test_the_mask_decides_what_a_secret_becomes() -> None:
    out = redact(
        "keyauth_credentials", {"id": "c", "key_hash": "abc"}, mask=lambda value: f"<{value}>"
    )
    assert out == {"id": "c", "key_hash": "<abc>"}
    config = {"auth": {"token": "t", "user": "u"}, "password": None}
    assert redact_config(config, _Config.model_json_schema(), lambda value: f"<{value}>") == {
        "auth": {"token": "<t>", "user": "u"},
        "password": None,
    }


def _masked_paths(value: Any, path: str = "") -> set[str]:
    if isinstance(value, dict):
        return {p for k, v in value.items() for p in _masked_paths(v, f"{path}.{k}")}
    if isinstance(value, list):
        return {p for i, v in enumerate(value) for p in _masked_paths(v, f"{path}[{i}]")}
    return {path} if isinstance(value, str) and value.startswith("[redacted") else set()


def test_decks_redactor_hides_exactly_what_the_audit_log_hides() -> None:
    """One walk decides for both: writeOnly fields through refs, lists and maps, and the
    name backstop, in declarative diffs as in audit diffs."""
    config = {
        "targets": [{"auth": {"param_name": "key", "param_value": "v", "header_value": "h"}}],
        "password": "p",
        "nested": {"deep": [{"client_secret": "c", "user": "u"}]},
    }
    plugins = registry()
    audit = redact("plugins", _plugin(config, name="ai-proxy-advanced"))
    assert audit is not None
    redactor = Redactor(plugins)
    deck = redactor.plugin_config("ai-proxy-advanced", config)
    assert _masked_paths(deck) == _masked_paths(audit["config"])
    assert _masked_paths(deck) == {
        ".targets[0].auth.param_value",
        ".targets[0].auth.header_value",
        ".password",
        ".nested.deep[0].client_secret",
    }
    # The decK mask is a per-answer salted fingerprint: equal values, equal fingerprints.
    assert deck["targets"][0]["auth"]["header_value"] == redactor.mask("h")
    assert deck["targets"][0]["auth"]["header_value"].startswith("[redacted:")


def test_decks_redactor_uses_the_schema_of_any_installed_plugin() -> None:
    custom = cast(Any, SimpleNamespace(config_model=_Config))  # all a Redactor reads
    config = {"by_name": {"x": {"token": "t3", "user": "u"}}, "note": "token"}
    out = Redactor({"custom": custom}).plugin_config("custom", config)
    assert out["by_name"]["x"]["token"].startswith("[redacted:")
    assert out["by_name"]["x"]["user"] == "u" and out["note"] == "token"
