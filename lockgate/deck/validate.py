"""Local checks on decK documents, run before anything is sent to the Admin API.

They catch what a typo produces (unknown keys, unsupported entity types, a wrong format version,
duplicate names across files) and name the file and entity. Field values (types, ranges, plugin
configs) are the control plane's to validate: it has the schemas, and rejects the whole document.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lockgate.deck.fields import (
    FORMAT_VERSION,
    KINDS,
    META_KEYS,
    TOP_LEVEL,
    UNSUPPORTED_TOP_LEVEL,
    EntityKind,
)

# Names that must be unique per kind, as in Kong (unique columns).
_UNIQUE: dict[str, tuple[str, ...]] = {
    "service": ("name",),
    "route": ("name",),
    "consumer": ("username", "custom_id"),
}


def normalize_format_version(value: object) -> object:
    """`_format_version: 3.0` unquoted is a YAML float; decK users write both, so accept both."""
    return FORMAT_VERSION if value == 3.0 and isinstance(value, float) else value


class Validator:
    """Checks the files of one run in order; `errors` accumulates across files.

    Uniqueness is checked across all files, since they are merged into one document.
    """

    def __init__(self) -> None:
        self.errors: list[str] = []
        self._seen: dict[tuple[str, str, str], str] = {}

    def check_file(self, document: Mapping[str, Any], source: str) -> None:
        """Check one parsed (and substituted) file."""
        for key, value in document.items():
            if not isinstance(key, str):
                self.errors.append(f"{source}: top-level keys must be strings, got {key!r}")
            elif key == "_format_version":
                version = normalize_format_version(value)
                if version != FORMAT_VERSION:
                    self.errors.append(
                        f'{source}: _format_version must be "{FORMAT_VERSION}", got {value!r}'
                    )
            elif key in META_KEYS:
                continue
            elif key in TOP_LEVEL:
                self._check_list(KINDS[TOP_LEVEL[key]], value, f"{source}: {key}")
            elif key in UNSUPPORTED_TOP_LEVEL:
                self.errors.append(f"{source}: unsupported entity type '{key}'")
            else:
                self.errors.append(f"{source}: unknown top-level key '{key}'")

    def check_merged(self, document: Mapping[str, Any]) -> None:
        """Check what only the merged document can show: the format version is declared."""
        if "_format_version" not in document:
            self.errors.append(
                f'_format_version is required: add _format_version: "{FORMAT_VERSION}"'
            )

    def _check_list(self, kind: EntityKind, value: object, path: str) -> None:
        if value is None:
            return
        if not isinstance(value, list):
            self.errors.append(f"{path}: expected a list, got {type(value).__name__}")
            return
        for index, entity in enumerate(value):
            self._check_entity(kind, entity, f"{path}[{index}]")

    def _check_entity(self, kind: EntityKind, entity: object, path: str) -> None:
        if not isinstance(entity, dict):
            self.errors.append(f"{path}: expected a mapping, got {type(entity).__name__}")
            return
        label = kind.label(entity)
        where = f"{path} ({label})" if label else path
        for key, value in entity.items():
            if key in kind.fields:
                continue
            if key in kind.children:
                self._check_list(KINDS[kind.children[key]], value, f"{where}.{key}")
            elif key in kind.unsupported_children:
                self.errors.append(f"{where}: unsupported entity type '{key}'")
            else:
                self.errors.append(f"{where}: unknown field '{key}'")
        self._check_required(kind, entity, where)
        self._check_unique(kind, entity, where)

    def _check_required(self, kind: EntityKind, entity: Mapping[str, Any], where: str) -> None:
        if kind.kind == "service" and not (entity.get("url") or entity.get("host")):
            self.errors.append(f"{where}: either 'url' or 'host' is required")
        elif kind.kind == "plugin" and not entity.get("name"):
            self.errors.append(f"{where}: missing required field 'name'")
        elif kind.kind == "consumer" and not (entity.get("username") or entity.get("custom_id")):
            self.errors.append(f"{where}: at least one of 'username' or 'custom_id' is required")

    def _check_unique(self, kind: EntityKind, entity: Mapping[str, Any], where: str) -> None:
        for field_name in _UNIQUE.get(kind.kind, ()):
            value = entity.get(field_name)
            if not isinstance(value, str):
                continue
            first = self._seen.get((kind.kind, field_name, value))
            if first is None:
                self._seen[(kind.kind, field_name, value)] = where
            else:
                self.errors.append(
                    f"{where}: duplicate {kind.kind} {field_name} '{value}' (also {first})"
                )
