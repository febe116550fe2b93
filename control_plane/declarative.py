"""decK documents (`_format_version: "3.0"`) flattened into the entities they declare.

Nesting becomes references: a route under `services[0]` points at that service, a plugin under
a route at that route, a credential under a consumer at that consumer. Top-level `routes` and
`plugins` name their service/route/consumer by name (or username) or id, as a string or as
`{"name": ...}` / `{"id": ...}`. Environment substitution is the client's job (`lockgate deck`).
`_info.select_tags` scopes the document to the entities carrying all those tags. Applying the
result to the store is `control_plane.store.sync`; exporting the store as a document is
`control_plane.declarative_export`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

FORMAT_VERSION = "3.0"
META_KEYS = frozenset({"_format_version", "_info", "_transform", "_konnect", "_workspace"})
ENTITY_KEYS = ("services", "routes", "consumers", "plugins")
# Child lists each kind may nest, and the kind of their items.
CHILDREN: dict[str, dict[str, str]] = {
    "service": {"routes": "route", "plugins": "plugin"},
    "route": {"plugins": "plugin"},
    "consumer": {"keyauth_credentials": "keyauth_credential", "plugins": "plugin"},
    "plugin": {},
    "keyauth_credential": {},
}
# Foreign keys each kind may give by name or id (nesting sets them implicitly).
REF_FIELDS: dict[str, tuple[str, ...]] = {
    "route": ("service",),
    "plugin": ("service", "route", "consumer"),
    "keyauth_credential": ("consumer",),
}


@dataclass(frozen=True, slots=True)
class Ref:
    """A reference from one declared entity to another: to the entity at document path `path`
    (nesting), or to the one whose id or name/username is `key` (written in the file)."""

    kind: str
    path: str | None = None
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Declared:
    """One entity of the document: its kind, where it is (`services[0].routes[1]`), its own
    fields (children and references removed) and its references."""

    kind: str
    path: str
    data: dict[str, Any]
    refs: dict[str, Ref] = field(default_factory=dict)

    def label(self) -> str | None:
        """The name a user knows it by, if the file gives one."""
        for key in ("name", "username", "custom_id", "id"):
            value = self.data.get(key)
            if isinstance(value, str) and value:
                return value
        return None


@dataclass(slots=True)
class Document:
    """The declared entities by kind, in document order, and the tags scoping the document:
    a sync touches only stored entities carrying every select tag, and adds them to the
    entities it creates or updates (decK's `_info.select_tags`)."""

    entities: dict[str, list[Declared]] = field(
        default_factory=lambda: {kind: [] for kind in CHILDREN}
    )
    select_tags: tuple[str, ...] = ()

    def of(self, kind: str) -> list[Declared]:
        return self.entities[kind]


class DocumentError(ValueError):
    """The document's structure is wrong (not a schema error of one entity): `path` names
    where, `message` what."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}" if path else message)


def parse_document(document: Mapping[str, Any]) -> Document:
    """Flatten a decK document. Raises DocumentError for unknown top-level keys, a missing or
    unsupported `_format_version`, and lists or references of the wrong shape.

    The document's records become the entities' `data` without a copy (child lists and
    references are popped from them): a document of 100k consumers is held once, not twice.
    Callers pass a document they no longer need, such as a freshly decoded request body."""
    for key in document:
        if key not in META_KEYS and key not in ENTITY_KEYS:
            raise DocumentError(key, "unknown field")
    version = document.get("_format_version")
    if version != FORMAT_VERSION:
        if version is None:
            message = "required field missing"
        elif not isinstance(version, str):
            message = f'expected a string ("{FORMAT_VERSION}")'
        else:
            message = f"unsupported value '{version}', expected '{FORMAT_VERSION}'"
        raise DocumentError("_format_version", message)
    doc = Document(select_tags=_select_tags(document.get("_info")))
    for key in ENTITY_KEYS:
        kind = key[:-1]
        for index, item in enumerate(_items(document.get(key), key)):
            _add(doc, kind, f"{key}[{index}]", item, None)
    return doc


def _select_tags(info: Any) -> tuple[str, ...]:
    if info is None:
        return ()
    if not isinstance(info, Mapping):
        raise DocumentError("_info", "expected a record")
    if info.get("default_lookup_tags"):
        # References resolve inside the file, then among stored entities outside the select
        # tags; lookup tags would narrow that, and ignoring them silently could bind wrongly.
        raise DocumentError("_info.default_lookup_tags", "not supported")
    return parse_tags(info.get("select_tags"), "_info.select_tags")


def parse_tags(value: Any, path: str) -> tuple[str, ...]:
    """Validate a select-tag list (Kong's tag rules: printable ASCII except `,` and `/`);
    duplicates are dropped, order kept."""
    if value is None:
        return ()
    if not isinstance(value, list):
        raise DocumentError(path, "expected an array of tags")
    tags: dict[str, None] = {}
    for index, tag in enumerate(value):
        if not (isinstance(tag, str) and tag and tag.isascii() and tag.isprintable()) or any(
            c in tag for c in ",/"
        ):
            message = "invalid tag: printable ASCII except ',' and '/'"
            raise DocumentError(f"{path}[{index}]", message)
        tags[tag] = None
    return tuple(tags)


def _items(value: Any, path: str) -> list[Mapping[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise DocumentError(path, "expected an array")
    for index, item in enumerate(value):
        if not isinstance(item, Mapping):
            raise DocumentError(f"{path}[{index}]", "expected a record")
    return value


def _add(
    doc: Document, kind: str, path: str, item: Mapping[str, Any], parent: tuple[str, str] | None
) -> None:
    # `item` is reused as the entity's data (see parse_document): no copy per record.
    data = item if type(item) is dict else dict(item)
    children = {name: data.pop(name) for name in CHILDREN[kind] if name in data}
    refs: dict[str, Ref] = {}
    for ref_field in REF_FIELDS.get(kind, ()):
        if data.get(ref_field) is not None:
            refs[ref_field] = _file_ref(ref_field, data.pop(ref_field), f"{path}.{ref_field}")
    if parent is not None:
        parent_kind, parent_path = parent
        refs[parent_kind] = Ref(parent_kind, path=parent_path)
    doc.of(kind).append(Declared(kind, path, data, refs))
    for name, child_kind in CHILDREN[kind].items():
        for index, child in enumerate(_items(children.get(name), f"{path}.{name}")):
            _add(doc, child_kind, f"{path}.{name}[{index}]", child, (kind, path))


def _file_ref(kind: str, value: Any, path: str) -> Ref:
    if isinstance(value, str) and value:
        return Ref(kind, key=value)
    if isinstance(value, Mapping):
        for key in ("id", "name", "username"):
            if isinstance(value.get(key), str) and value[key]:
                return Ref(kind, key=value[key])
    raise DocumentError(path, f"expected the {kind}'s name or id")
