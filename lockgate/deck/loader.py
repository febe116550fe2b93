"""Reading decK files: parse (YAML or JSON), substitute env templates, validate, merge.

`load_files` is the only way a document reaches the Admin API client, so nothing unvalidated or
with an unresolved template can be sent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from lockgate.deck.errors import DeckError
from lockgate.deck.fields import META_KEYS, TOP_LEVEL
from lockgate.deck.template import EnvSubstitution
from lockgate.deck.validate import Validator, normalize_format_version

# libyaml's safe loader when PyYAML has it: ~10x faster on files of 100k consumers.
_YAML_LOADER: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
# Values a YAML file may hold beyond one per character of its text (aliases reuse values).
_EXPANSION_ALLOWANCE = 1_000_000


@dataclass(frozen=True, slots=True)
class LoadedConfig:
    """A merged, substituted, locally valid decK document, ready to send as JSON.

    `secrets` are the substituted env values, to be masked in anything printed.
    """

    document: dict[str, Any]
    secrets: frozenset[str]
    files: tuple[str, ...]


def load_files(paths: Sequence[str], env: Mapping[str, str]) -> LoadedConfig:
    """Load and merge `paths` in order; `env` holds the `DECK_` variables templates may use.

    Entity lists are concatenated; settings keys (`_format_version`, `_info`, ...) must agree
    between the files that set them. Raises DeckError carrying every problem found.
    """
    substitution = EnvSubstitution(env)
    validator = Validator()
    errors: list[str] = []
    parsed: list[tuple[str, dict[str, Any]]] = []
    for path in paths:
        try:
            raw = _parse(path)
        except DeckError as exc:
            errors.extend(exc.messages)
            continue
        document = substitution.apply(raw, path)
        validator.check_file(document, path)
        parsed.append((path, document))
    try:
        substitution.check()
    except DeckError as exc:
        errors[:0] = exc.messages
    merged, merge_errors = _merge(parsed)
    errors.extend(merge_errors)
    errors.extend(validator.errors)
    if not errors:
        validator.check_merged(merged)
        errors.extend(validator.errors)
    if errors:
        raise DeckError(*errors)
    return LoadedConfig(merged, frozenset(substitution.used_values), tuple(paths))


def _parse(path: str) -> dict[str, Any]:
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise DeckError(f"{path}: cannot read the file: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise DeckError(f"{path}: not UTF-8 text") from exc
    if path.endswith(".json"):
        try:
            document = json.loads(text)
        except ValueError as exc:
            raise DeckError(f"{path}: invalid JSON: {exc}") from exc
    else:
        try:
            # The YAML loader reads JSON too: JSON is (for these documents) a subset of YAML.
            document = yaml.load(text, Loader=_YAML_LOADER)  # noqa: S506 (a safe loader)
        except yaml.YAMLError as exc:
            raise DeckError(f"{path}: invalid YAML or JSON: {exc}") from exc
        _check_expansion(document, path, len(text) + _EXPANSION_ALLOWANCE)
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise DeckError(f"{path}: expected a mapping at the top, got {type(document).__name__}")
    try:
        # YAML can yield dates and other values JSON cannot carry; catch them here, not mid-send.
        json.dumps(document)
    except (TypeError, ValueError) as exc:
        raise DeckError(f"{path}: holds a value JSON cannot represent ({exc}); quote it") from exc
    return document


def _check_expansion(document: object, path: str, limit: int) -> None:
    """Refuse a document whose YAML aliases make it far larger than its text (a "billion
    laughs" file would otherwise exhaust memory while it is substituted and encoded)."""
    stack = [document]
    count = 0
    while stack:
        value = stack.pop()
        count += 1
        if count > limit:
            raise DeckError(f"{path}: YAML aliases expand to more than {limit} values")
        if isinstance(value, dict):
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)


def _merge(parsed: Sequence[tuple[str, dict[str, Any]]]) -> tuple[dict[str, Any], list[str]]:
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    errors: list[str] = []
    for path, document in parsed:
        for key, value in document.items():
            if key == "_format_version":
                value = normalize_format_version(value)
            if key in META_KEYS:
                if key in merged and merged[key] != value:
                    errors.append(f"{key} differs between {origin[key]} and {path}")
                merged.setdefault(key, value)
                origin.setdefault(key, path)
            elif key in TOP_LEVEL and isinstance(value, list):
                merged.setdefault(key, []).extend(value)
    return merged, errors
