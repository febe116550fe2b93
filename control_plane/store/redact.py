"""Find the secrets in entity dicts and plugin configs, and replace them with a mask.

One walk serves both places that hide secrets: the audit log (every secret becomes `REDACTED`)
and declarative diffs and sanitized dumps (control_plane.declarative_secrets: salted
fingerprints), so the two can never disagree about what a secret is.

What counts as a secret:
- a key-auth credential's `key_hash` (a hash, but of a bearer key: offline-guessable);
- an admin token's `token_hash` (same reasoning);
- in a plugin's `config`, every field whose JSON Schema (the plugin's
  `config_model.model_json_schema()`) says `"writeOnly": true`, at any depth (through `$ref`,
  `anyOf`/`oneOf`/`allOf`, arrays and maps);
- as a backstop for fields a schema forgot and for unknown plugins, any config field (at any
  depth) named in `SECRET_NAMES` (this covers ai-proxy's `auth.header_value`/`param_value`).

A secret that is set becomes `mask(value)`; an unset one (None) stays None so the output still
shows whether it was configured.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

REDACTED = "[redacted]"

SECRET_NAMES = frozenset(
    {
        "header_value",
        "param_value",
        "password",
        "secret",
        "aws_secret_access_key",
        "gcp_service_account_json",
        "client_secret",
        "api_key",
    }
)

_HASH_FIELDS = {"keyauth_credentials": "key_hash", "admin_tokens": "token_hash"}

Schema = Mapping[str, Any]
SchemaSource = Callable[[str], Schema | None]
Mask = Callable[[Any], str]
"""What a set secret value is replaced by."""
ConfigPath = tuple[str | int, ...]
"""Where a value sits in a config: keys and list indexes from the top."""
PathMask = Callable[[ConfigPath, Any], Any]
"""Given a set secret's path and value, what replaces it (any value)."""


def audit_mask(_value: Any) -> str:
    """The audit log's mask: the same `REDACTED` for every secret."""
    return REDACTED


def _registry_schema(plugin_name: str) -> Schema | None:
    from gateway.plugins import registry  # deferred: loads every bundled plugin

    plugin = registry().get(plugin_name)
    return None if plugin is None else plugin.config_model.model_json_schema()


@lru_cache(maxsize=64)
def _cached_schema(plugin_name: str) -> Schema | None:
    return _registry_schema(plugin_name)


def hash_field(entity: str) -> str | None:
    """The field of table `entity` that holds a secret hash, if it has one."""
    return _HASH_FIELDS.get(entity)


def has_secrets(entity: str) -> bool:
    """Whether rows of table `entity` may hold a secret (others need no redaction at all)."""
    return entity in _HASH_FIELDS or entity == "plugins"


def redact(
    entity: str,
    data: Mapping[str, Any] | None,
    schemas: SchemaSource | None = None,
    mask: Mask = audit_mask,
) -> dict[str, Any] | None:
    """A copy of `data` (an entity of table `entity`, e.g. "plugins") with secrets masked.

    `schemas` maps a plugin name to its config JSON Schema (default: the bundled plugins').
    """
    if data is None:
        return None
    out = dict(data)
    hash_field = _HASH_FIELDS.get(entity)
    if hash_field is not None and out.get(hash_field) is not None:
        out[hash_field] = mask(out[hash_field])
    if entity == "plugins" and isinstance(out.get("config"), Mapping):
        schema = (schemas or _cached_schema)(str(out.get("name")))
        out["config"] = redact_config(out["config"], schema, mask)
    return out


def redact_config(
    config: Mapping[str, Any], schema: Schema | None, mask: Mask = audit_mask
) -> dict[str, Any]:
    """A copy of a plugin `config` with its secret fields masked, given the config's JSON
    Schema (None or `{}` for an unknown plugin: then only `SECRET_NAMES` apply)."""
    return redact_config_at(config, schema, lambda _path, value: mask(value))


def redact_config_at(
    config: Mapping[str, Any], schema: Schema | None, mask: PathMask
) -> dict[str, Any]:
    """As `redact_config`, but `mask` is given each set secret's path with its value (the UI
    uses this to name which stored secret a placeholder stands for, and to put it back)."""
    schema = schema or {}
    walked = _walk(config, schema, schema.get("$defs", {}), mask, ())
    return dict(walked)


def _walk(
    value: Any, schema: Schema, defs: Mapping[str, Any], mask: PathMask, path: ConfigPath
) -> Any:
    branches = _branches(schema, defs)
    if isinstance(value, Mapping):
        out: dict[str, Any] = {}
        for key, item in value.items():
            subs = [s for b in branches if (s := _property(b, str(key))) is not None]
            secret = key in SECRET_NAMES or any(_write_only(s, defs) for s in subs)
            if secret and item is not None:
                out[key] = mask((*path, key), item)
            else:
                out[key] = _walk(item, _any_of(subs), defs, mask, (*path, key))
        return out
    if isinstance(value, list):
        items = [b["items"] for b in branches if isinstance(b.get("items"), Mapping)]
        return [
            _walk(item, _any_of(items), defs, mask, (*path, index))
            for index, item in enumerate(value)
        ]
    return value


def _branches(schema: Schema, defs: Mapping[str, Any], depth: int = 0) -> list[Schema]:
    """The schema and every schema it stands for (`$ref` resolved, alternatives flattened)."""
    if depth > 16:  # recursive schemas: stop; the name backstop still applies below
        return []
    ref = schema.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        target = defs.get(ref.removeprefix("#/$defs/"))
        return _branches(target, defs, depth + 1) if isinstance(target, Mapping) else []
    found = [schema]
    for key in ("anyOf", "oneOf", "allOf"):
        for sub in schema.get(key) or []:
            if isinstance(sub, Mapping):
                found.extend(_branches(sub, defs, depth + 1))
    return found


def _property(schema: Schema, key: str) -> Schema | None:
    properties = schema.get("properties")
    if isinstance(properties, Mapping) and isinstance(properties.get(key), Mapping):
        sub: Schema = properties[key]
        return sub
    extra = schema.get("additionalProperties")
    return extra if isinstance(extra, Mapping) else None


def _write_only(schema: Schema, defs: Mapping[str, Any]) -> bool:
    return any(b.get("writeOnly") is True for b in _branches(schema, defs))


def _any_of(schemas: list[Schema]) -> Schema:
    return schemas[0] if len(schemas) == 1 else {"anyOf": schemas}
