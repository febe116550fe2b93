"""Secrets in plugin forms: drawn as placeholders, put back when a form comes back unchanged.

What a secret is comes from control_plane.store.redact (a schema `writeOnly` field or a name
in `SECRET_NAMES`, at any depth: ai-proxy's `auth.header_value`, ...), so the UI hides exactly
what the audit log and sanitized dumps hide. A set secret is drawn as
`[stored secret: targets[0].auth.header_value]`: the placeholder names where the stored value
was, never any part of the value. A vault reference kept there instead of the value
(`{vault://env/openai-auth-header}`, resolved on the data planes) is shown as it is. When the
form comes back:

- a placeholder in a secret field is replaced by the stored value it names (so a target moved
  in a JSON list keeps its own key);
- any other value there replaces the secret; `null` (or a blank text input) clears it, when
  the schema allows that;
- a placeholder that names no stored secret, or that was moved out of a secret field, is
  refused beside its field (the value is never copied where it would be shown).

A refused form is drawn again with the secrets the user typed replaced by `RETYPE`: the page
shows what was typed everywhere else, but no secret, stored or new.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from control_plane.store.redact import SECRET_NAMES, ConfigPath, Schema, redact_config_at
from control_plane.ui.plugin_forms import PluginField
from gateway.vault import is_reference

STORED = "[stored secret: {}]"
RETYPE = "[new secret: type it again]"
HINT = (
    "Secrets are stored and never shown: leave “[stored secret: …]” as it is to keep one, "
    "or type a new value to replace it (null in JSON, or an empty box, clears it)."
)


def path_text(path: ConfigPath) -> str:
    """`("targets", 0, "auth", "header_value")` as `targets[0].auth.header_value`."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def placeholder(path: ConfigPath) -> str:
    return STORED.format(path_text(path))


def is_placeholder(value: Any) -> bool:
    """Whether `value` is a placeholder this module draws (stored or retype)."""
    if not isinstance(value, str):
        return False
    stored = value.startswith(STORED.format("")[:-1]) and value.endswith("]")
    return stored or value == RETYPE


def masked(config: Mapping[str, Any], schema: Schema) -> dict[str, Any]:
    """`config` with every set secret replaced by its placeholder; a vault reference
    (`{vault://env/...}`) is not a secret and is shown as it is."""
    return redact_config_at(
        config, schema, lambda path, value: value if is_reference(value) else placeholder(path)
    )


def secret_fields(config: Mapping[str, Any], schema: Schema) -> set[str]:
    """The top-level fields of `config` that hold at least one set secret."""
    found: set[str] = set()

    def note(path: ConfigPath, value: Any) -> Any:
        found.add(str(path[0]))
        return value

    redact_config_at(config, schema, note)
    return found


def restored(
    submitted: Mapping[str, Any], stored: Mapping[str, Any], schema: Schema
) -> tuple[dict[str, Any], dict[str, str]]:
    """The submitted `config` with placeholders replaced by the stored secrets they name, and
    messages (by top-level field) for placeholders that cannot be used."""
    secrets: dict[str, Any] = {}

    def remember(path: ConfigPath, value: Any) -> Any:
        secrets[placeholder(path)] = value
        return value

    redact_config_at(stored, schema, remember)
    errors: dict[str, str] = {}
    put_back: set[ConfigPath] = set()

    def restore(path: ConfigPath, value: Any) -> Any:
        if value == RETYPE:
            errors[str(path[0])] = f"{path_text(path)}: type the new secret again"
            return value
        if is_placeholder(value):
            if value not in secrets:
                errors[str(path[0])] = (
                    f"{path_text(path)}: {value} names no stored secret; type the value"
                )
                return value
            put_back.add(path)
            return secrets[value]
        return value

    config = redact_config_at(submitted, schema, restore)
    for path in _placeholders(config, ()):
        if path not in put_back and str(path[0]) not in errors:
            errors[str(path[0])] = (
                f"{path_text(path)}: a stored-secret placeholder can only stay in a secret field"
            )
    return config, errors


def _placeholders(value: Any, path: ConfigPath) -> list[ConfigPath]:
    if isinstance(value, Mapping):
        return [p for k, v in value.items() for p in _placeholders(v, (*path, str(k)))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _placeholders(v, (*path, i))]
    return [path] if is_placeholder(value) else []


def masked_typed(
    fields: list[PluginField], values: dict[str, Any], schema: Schema
) -> dict[str, Any]:
    """What the user typed (`form_shown`), with typed secrets replaced by `RETYPE` and
    placeholders kept, to draw a refused form again. JSON that does not parse is kept as
    typed, but for the strings given to secret names (`"header_value": "..."`)."""

    def hide(_path: ConfigPath, value: Any) -> Any:
        return value if is_placeholder(value) or is_reference(value) else RETYPE

    out = dict(values)
    for field in fields:
        value = values.get(field.name)
        if field.widget == "text" and isinstance(value, str) and value.strip():
            out[field.name] = redact_config_at({field.name: value}, schema, hide)[field.name]
        elif field.widget == "json" and isinstance(value, str) and value.strip():
            try:
                parsed = json.loads(value)
            except ValueError:
                out[field.name] = _hide_unparsed(value, schema)
                continue
            hidden = redact_config_at({field.name: parsed}, schema, hide)[field.name]
            if hidden != parsed:
                out[field.name] = json.dumps(hidden, indent=2)
    return out


def _secret_names(schema: Any) -> set[str]:
    """`SECRET_NAMES` and every property the schema marks `writeOnly`, at any depth."""
    names = set(SECRET_NAMES)
    if isinstance(schema, Mapping):
        for key, sub in (schema.get("properties") or {}).items():
            if isinstance(sub, Mapping) and sub.get("writeOnly") is True:
                names.add(str(key))
        for sub in schema.values():
            names |= _secret_names(sub)
    elif isinstance(schema, list):
        for sub in schema:
            names |= _secret_names(sub)
    return names


def _hide_unparsed(text: str, schema: Schema) -> str:
    names = "|".join(re.escape(n) for n in sorted(_secret_names(schema)))
    # a string value up to its closing quote, or to the end of the line when unclosed
    pattern = re.compile(rf'("(?:{names})"\s*:\s*)"((?:[^"\\\n]|\\.)*)"?')

    def hide(found: re.Match[str]) -> str:
        value = found.group(2)
        return found.group(0) if is_placeholder(value) else f'{found.group(1)}"{RETYPE}"'

    return pattern.sub(hide, text)
