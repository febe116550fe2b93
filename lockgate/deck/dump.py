"""`lockgate deck dump`: the control plane's decK document (`GET /config`) as YAML.

The control plane nests the document and marks each key-auth credential with the hash it
stores (`key_hash: "sha256:<hex>"`; keys are never stored in clear). Here ids are dropped
unless asked for (credentials keep theirs: like Kong, decK matches them by id), and the YAML
is written with multi-line strings (Lua code) as literal blocks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import yaml

from lockgate.deck.fields import KINDS, TOP_LEVEL

CREDENTIALS_NOTE = (
    "Key-auth keys are stored hashed: each keyauth_credential carries key_hash (the stored",
    "SHA-256 of its key) instead of the key. `lockgate deck sync` of this file keeps that hash,",
    "so the same keys keep working. Treat this file as a secret.",
)
SANITIZED_NOTE = (
    "Sanitized dump: keys and secret plugin fields are replaced by salted digests.",
    "It shows the shape of the configuration; syncing it would not reproduce the secrets.",
)


def _strip(kind: str, entity: Mapping[str, Any], with_id: bool) -> dict[str, Any]:
    spec = KINDS[kind]
    out: dict[str, Any] = {}
    for key, value in entity.items():
        if key == "id" and not with_id and kind != "keyauth_credential":
            continue
        if key in spec.children and isinstance(value, list):
            child = spec.children[key]
            value = [_strip(child, item, with_id) for item in value if isinstance(item, Mapping)]
        out[key] = value
    return out


def prepare(document: Mapping[str, Any], *, with_id: bool) -> dict[str, Any]:
    """The document to write: ids removed unless `with_id` (credential ids always kept)."""
    out: dict[str, Any] = {}
    for key, value in document.items():
        if key in TOP_LEVEL and isinstance(value, list):
            kind = TOP_LEVEL[key]
            value = [_strip(kind, item, with_id) for item in value if isinstance(item, Mapping)]
        out[key] = value
    return out


def has_credentials(document: Mapping[str, Any]) -> bool:
    return any(
        isinstance(consumer, Mapping) and consumer.get("keyauth_credentials")
        for consumer in document.get("consumers") or []
    )


class _Dumper(yaml.SafeDumper):
    """Block style, with multi-line strings (Lua code) written as literal `|` blocks."""


def _str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    style = "|" if "\n" in value else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_Dumper.add_representer(str, _str)


def render_yaml(document: Mapping[str, Any], *, header: Iterable[str] = ()) -> str:
    """YAML text for `document`, keys in insertion order, after `header` comment lines."""
    body = yaml.dump(
        dict(document),
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
    )
    return "".join(f"# {line}\n" for line in header) + body
