"""Vault references (Kong's `{vault://env/...}`): parsing, the env vault's naming rules, and
the replacement of referenceable fields in a plugin config."""

from __future__ import annotations

import json
from typing import Any

import pytest

from gateway.vault import (
    EnvVault,
    Reference,
    UnresolvedReference,
    has_references,
    is_reference,
    parse_reference,
    resolve_fields,
)


def test_kong_reference_parts() -> None:
    # The example of Kong's kong.vault.parse_reference.
    assert parse_reference("{vault://env/cert/key?prefix=SSL_#1}") == Reference(
        "env", "cert", "key", {"prefix": "SSL_"}, 1
    )
    assert parse_reference("{vault://env/openai-key}") == Reference("env", "openai-key")


@pytest.mark.parametrize(
    "value", ["sk-plain", "vault://env/x", "{vault://env/x", "{env://x}", "", None, 5]
)
def test_other_values_are_not_references(value: object) -> None:
    assert not is_reference(value)


@pytest.mark.parametrize(
    ("reference", "says"),
    [
        ("{vault://env}", "a vault name and a resource"),
        ("{vault://env/}", "a vault name and a resource"),
        ("{vault:///key}", "a vault name and a resource"),
        ("{vault://env//key}", "a vault name and a resource"),
        ("{vault://env/a/b/c}", "at most a resource and a key"),
        ("{vault://env/key#latest}", "the version must be a whole number"),
        ("{vault://env/key?prefix}", "malformed query"),
    ],
)
def test_malformed_references_say_what_is_wrong(reference: str, says: str) -> None:
    with pytest.raises(UnresolvedReference, match=says):
        parse_reference(reference)


def test_env_vault_names_the_variable_as_kong_does() -> None:
    vault = EnvVault({"OPENAI_KEY": "sk-1", "PROD_OPENAI_KEY": "sk-2", "openai_key": "lower"})
    assert vault.resolve("{vault://env/openai-key}") == "sk-1"  # dashes -> _, upper-cased
    assert vault.resolve("{vault://env/OPENAI_KEY}") == "sk-1"
    assert vault.resolve("{vault://env/openai-key?prefix=prod_}") == "sk-2"
    assert vault.resolve("{vault://env/openai-key#3}") == "sk-1"  # versions: none in env


def test_env_vault_reads_a_key_of_a_json_variable() -> None:
    doc = {"api-key": "sk-json", "org": 42, "nested": {"a": 1}}
    vault = EnvVault({"OPENAI": json.dumps(doc), "PLAIN": "not json"})
    assert vault.resolve("{vault://env/openai/api-key}") == "sk-json"
    assert vault.resolve("{vault://env/openai/org}") == "42"
    with pytest.raises(UnresolvedReference, match="OPENAI has no key 'missing'"):
        vault.resolve("{vault://env/openai/missing}")
    with pytest.raises(UnresolvedReference, match="'nested' is not a string"):
        vault.resolve("{vault://env/openai/nested}")
    with pytest.raises(UnresolvedReference, match="PLAIN is not a JSON object"):
        vault.resolve("{vault://env/plain/key}")


def test_unresolved_references_name_the_variable_never_a_value() -> None:
    vault = EnvVault({"OTHER_SECRET": "sk-do-not-print"})
    with pytest.raises(UnresolvedReference) as missing:
        vault.resolve("{vault://env/openai-key}")
    assert "environment variable OPENAI_KEY is not set on this data plane" in str(missing.value)
    with pytest.raises(UnresolvedReference, match="vault 'aws' is not available"):
        vault.resolve("{vault://aws/openai-key}")
    with pytest.raises(UnresolvedReference, match="unknown option 'ttl'"):
        vault.resolve("{vault://env/other-secret?ttl=60}")
    with pytest.raises(UnresolvedReference, match="is not a valid name"):
        vault.resolve("{vault://env/secret?prefix=OTHER%3D}")
    assert "sk-do-not-print" not in repr(vault)


def test_lockgate_settings_are_not_served() -> None:
    vault = EnvVault({"LOCKGATE_REDIS_URL": "redis://:password@redis:6379/0"})
    for reference in (
        "{vault://env/lockgate-redis-url}",
        "{vault://env/redis-url?prefix=lockgate_}",
    ):
        with pytest.raises(UnresolvedReference, match="own settings") as caught:
            vault.resolve(reference)
        assert "password" not in str(caught.value)


PATHS = (
    "targets[].auth.header_value",
    "targets[].auth.param_value",
    "embeddings.auth.header_value",
)


def test_resolve_fields_replaces_only_references_at_referenceable_paths() -> None:
    config: dict[str, Any] = {
        "targets": [
            {"auth": {"header_name": "Authorization", "header_value": "{vault://env/key-a}"}},
            {"auth": {"header_value": "Bearer literal"}},
            {"auth": {"param_value": "{vault://env/key-b}"}},
        ],
        "embeddings": {"auth": {"header_value": "{vault://env/key-a}"}},
        "other": "{vault://env/key-a}",  # not referenceable: a literal, as in Kong
    }
    vault = EnvVault({"KEY_A": "Bearer sk-a", "KEY_B": "sk-b"})
    assert has_references(config, PATHS)
    resolved = resolve_fields(config, PATHS, vault)
    assert [t["auth"] for t in resolved["targets"]] == [
        {"header_name": "Authorization", "header_value": "Bearer sk-a"},
        {"header_value": "Bearer literal"},
        {"param_value": "sk-b"},
    ]
    assert resolved["embeddings"]["auth"]["header_value"] == "Bearer sk-a"
    assert resolved["other"] == "{vault://env/key-a}"
    assert config["targets"][0]["auth"]["header_value"] == "{vault://env/key-a}"  # a copy


def test_resolve_fields_names_the_field_of_an_unresolved_reference() -> None:
    config = {"targets": [{"auth": {"header_value": "{vault://env/missing-key}"}}]}
    with pytest.raises(UnresolvedReference) as caught:
        resolve_fields(config, PATHS, EnvVault({}))
    assert str(caught.value).startswith("config.targets[].auth.header_value: {vault://env/")
    assert "MISSING_KEY" in str(caught.value)


def test_configs_without_references_are_recognised() -> None:
    assert not has_references({"targets": [{"auth": {"header_value": "Bearer x"}}]}, PATHS)
    assert not has_references({"targets": "odd"}, PATHS)
    assert not has_references({}, PATHS)
