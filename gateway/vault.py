"""Vault references in plugin configs (Kong's `{vault://env/...}`), resolved on the data plane.

A referenceable field (Kong's `referenceable = true`, e.g. the `auth.header_value` of ai-proxy)
may hold a reference instead of the secret: `{vault://env/openai-key}`. The control plane
stores and serves the reference only; each data plane resolves it when it compiles a snapshot,
from its own environment as it was when the process started (as Kong's `env` vault does, a new
variable needs a restart). So a provider key set on the data planes never passes through the
control plane, its database, decK files, the Admin API or the UI.

Format (Kong's `kong.vault.parse_reference`): `{vault://<vault>/<resource>[/<key>][?<query>]
[#<version>]}`. Only the `env` vault is built in, as in Kong OSS:

- the variable is the resource with `-` turned into `_`, after the `prefix` query option if
  any, upper-cased: `{vault://env/openai-key}` reads `OPENAI_KEY`,
  `{vault://env/key?prefix=prod_}` reads `PROD_KEY`;
- with a key, the variable holds a JSON object and the key names the field:
  `{vault://env/openai/api-key}` reads field `api-key` of `OPENAI`'s JSON;
- a version (`#1`) is accepted and ignored (environment variables have none);
- Lockgate's own settings (`LOCKGATE_*`) are never served.

A reference that cannot be resolved is an `UnresolvedReference` whose message names the
reference and the variable, never a value.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeGuard
from urllib.parse import parse_qsl

_PREFIX = "{vault://"
_NAME = re.compile(r"^[a-z][a-z0-9_-]*$")
_OWN_SETTINGS = "LOCKGATE_"
"""Never served: a config writer could otherwise send, say, the Redis URL and its password to
an upstream of their choosing."""
_ENV_PREFIX = re.compile(r"^[A-Za-z_-][A-Za-z0-9_-]*$")  # Kong's env vault `prefix` pattern


class UnresolvedReference(Exception):
    """A vault reference that is malformed, names an unknown vault, or has no value here."""


@dataclass(frozen=True, slots=True)
class Reference:
    vault: str
    resource: str
    key: str | None = None
    config: Mapping[str, str] = field(default_factory=dict)
    version: int | None = None


def is_reference(value: object) -> TypeGuard[str]:
    """Whether `value` looks like a reference (Kong: starts with `{vault://`, ends with `}`)."""
    return isinstance(value, str) and value.startswith(_PREFIX) and value.endswith("}")


def parse_reference(reference: str) -> Reference:
    """The parts of `reference`; raises UnresolvedReference if it is malformed."""
    if not is_reference(reference):
        raise UnresolvedReference(f"{reference!r} is not a vault reference")
    body = reference[len(_PREFIX) : -1]
    body, _, version_text = body.partition("#")
    body, _, query = body.partition("?")
    vault, _, path = body.partition("/")
    parts = path.split("/")
    if not _NAME.match(vault) or not path or any(not part for part in parts):
        raise UnresolvedReference(
            f"{reference}: expected {{vault://<vault>/<resource>[/<key>]}} with a vault name "
            "and a resource"
        )
    if len(parts) > 2:
        raise UnresolvedReference(f"{reference}: expected at most a resource and a key")
    version: int | None = None
    if version_text:
        if not version_text.isdigit():
            raise UnresolvedReference(f"{reference}: the version must be a whole number")
        version = int(version_text)
    try:
        config = dict(parse_qsl(query, keep_blank_values=True, strict_parsing=bool(query)))
    except ValueError:
        raise UnresolvedReference(f"{reference}: malformed query {query!r}") from None
    return Reference(vault, parts[0], parts[1] if len(parts) == 2 else None, config, version)


def check_reference(reference: str) -> tuple[Reference, str]:
    """The parts of a reference this gateway can resolve, and the variable it reads; raises
    UnresolvedReference for a malformed one or one no data plane could resolve (another vault,
    an unknown option, Lockgate's own settings). The control plane checks writes with it."""
    ref = parse_reference(reference)
    if ref.vault != "env":
        raise UnresolvedReference(
            f"{reference}: vault {ref.vault!r} is not available (Lockgate has the 'env' vault)"
        )
    unknown = sorted(set(ref.config) - {"prefix"})
    if unknown:
        raise UnresolvedReference(f"{reference}: unknown option {unknown[0]!r} (env: prefix)")
    prefix = ref.config.get("prefix", "")
    if prefix and not _ENV_PREFIX.match(prefix):
        raise UnresolvedReference(f"{reference}: the prefix {prefix!r} is not a valid name")
    variable = (prefix + ref.resource.replace("-", "_")).upper()
    if variable.startswith(_OWN_SETTINGS):
        raise UnresolvedReference(
            f"{reference}: Lockgate's own settings ({_OWN_SETTINGS}*) are not readable "
            "through the vault"
        )
    return ref, variable


class EnvVault:
    """Resolves references from a fixed environment (the data plane's, read once at start)."""

    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = dict(environ)

    def __repr__(self) -> str:  # never the values
        return f"EnvVault({len(self._environ)} variables)"

    def resolve(self, reference: str) -> str:
        ref, variable = check_reference(reference)
        value = self._environ.get(variable)
        if value is None:
            raise UnresolvedReference(
                f"{reference}: environment variable {variable} is not set on this data plane"
            )
        if ref.key is None:
            return value
        try:
            document = json.loads(value)
        except ValueError:
            raise UnresolvedReference(
                f"{reference}: {variable} is not a JSON object (a key was given)"
            ) from None
        if not isinstance(document, dict) or ref.key not in document:
            raise UnresolvedReference(f"{reference}: {variable} has no key {ref.key!r}")
        found = document[ref.key]
        if isinstance(found, str):
            return found
        if isinstance(found, (int, float)) and not isinstance(found, bool):
            return json.dumps(found)
        raise UnresolvedReference(f"{reference}: {variable}'s {ref.key!r} is not a string")


NO_VAULT = EnvVault({})
"""No variables: every reference is unresolved (compiling without a data plane's environment)."""


def resolve_fields(config: Mapping[str, Any], paths: Sequence[str], vault: EnvVault) -> Any:
    """A copy of `config` with the references at `paths` replaced by their values.

    A path is dotted field names; `name[]` walks every element of a list (`targets[].auth.
    header_value`). Values that are not references, and missing fields, are left as they are.
    Raises UnresolvedReference (its message names the field)."""
    result: Any = copy.deepcopy(dict(config))
    for loc, reference in references_at(config, paths):
        node = result
        for part in loc[:-1]:
            node = node[part]
        try:
            node[loc[-1]] = vault.resolve(reference)
        except UnresolvedReference as exc:
            field = "".join("[]" if isinstance(p, int) else f".{p}" for p in loc)
            raise UnresolvedReference(f"config{field}: {exc}") from None
    return result


def references_at(
    config: Mapping[str, Any], paths: Sequence[str]
) -> list[tuple[tuple[str | int, ...], str]]:
    """Every reference held at `paths`, with its location (`("targets", 0, "auth",
    "header_value")`)."""
    found: list[tuple[tuple[str | int, ...], str]] = []

    def walk(node: Any, steps: list[str], loc: tuple[str | int, ...]) -> None:
        if not steps or not isinstance(node, dict):
            return
        name, many = _step(steps[0])
        value = node.get(name)
        if many:
            for index, item in enumerate(value if isinstance(value, list) else ()):
                walk(item, steps[1:], (*loc, name, index))
        elif len(steps) > 1:
            walk(value, steps[1:], (*loc, name))
        elif is_reference(value):
            found.append(((*loc, name), value))

    for path in paths:
        walk(config, path.split("."), ())
    return found


def has_references(config: Mapping[str, Any], paths: Sequence[str]) -> bool:
    """Whether any field at `paths` holds a reference."""
    return bool(references_at(config, paths))


def _step(step: str) -> tuple[str, bool]:
    return (step[:-2], True) if step.endswith("[]") else (step, False)
