"""The store as a nested decK 3.0 document (`GET /config`): what `lockgate deck dump` writes.

Routes nest under their service, plugins under their most specific scope (route, then service,
then consumer; other scopes are references by name, or id when unnamed), credentials under
their consumer. Every entity keeps its id; timestamps are left out (a sync sets them). A
credential carries `key_hash: "sha256:<hex>"` instead of its key, which is never stored: a sync
of the document keeps that hash, so the keys keep working. With select tags only the entities
carrying all of them are exported, and `_info.select_tags` records the scope. `sanitize`
replaces secrets (key hashes, secret plugin fields) by salted digests, for sharing a dump.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from control_plane.declarative import FORMAT_VERSION
from control_plane.declarative_secrets import Redactor
from control_plane.store.protocol import Reader
from control_plane.store.sync_credentials import HASH_PREFIX
from control_plane.store.sync_index import has_tags
from gateway.entities import Consumer, Entity, KeyAuthCredential, Plugin, Route, Service
from gateway.plugins.base import Plugin as PluginType

_DROPPED = {"created_at", "updated_at"}
_SCOPES = ("route", "service", "consumer")


def _sort_key(entity: Entity) -> tuple[str, str]:
    name = getattr(entity, "name", None) or getattr(entity, "username", None)
    name = name or getattr(entity, "custom_id", None) or ""
    return (str(name), entity.id)


class _Exporter:
    def __init__(self, reader: Reader, tags: Sequence[str], redactor: Redactor | None) -> None:
        def load(model: type[Entity]) -> list[Any]:
            return sorted((e for e in reader.all(model) if has_tags(e, tags)), key=_sort_key)

        self.redactor = redactor
        self.services: list[Service] = load(Service)
        self.routes: list[Route] = load(Route)
        self.consumers: list[Consumer] = load(Consumer)
        self.plugins: list[Plugin] = load(Plugin)
        self.credentials: list[KeyAuthCredential] = load(KeyAuthCredential)
        self.exported = {e.id for e in (*self.services, *self.routes, *self.consumers)}
        # References to entities outside the export (other tags) are written by name: a sync
        # of this document resolves them among the stored entities outside its select tags.
        self.names: dict[str, str] = {}
        for model in (Service, Route, Consumer):
            for entity in reader.all(model):
                self.names[entity.id] = _sort_key(entity)[0] or entity.id
        self.children: dict[tuple[str, str | None], list[dict[str, Any]]] = {}
        # Leaves first: a route's body nests its plugins, so they must be placed before it.
        for plugin in self.plugins:
            self._add(*self._plugin_place(plugin), self.plugin(plugin))
        for cred in self.credentials:
            self._add("keyauth_credentials", cred.consumer.id, self.credential(cred))
        for route in self.routes:
            self._add("routes", self._exported_parent(route), self.route(route))

    def _add(self, key: str, parent: str | None, body: dict[str, Any]) -> None:
        self.children.setdefault((key, parent), []).append(body)

    def _plugin_place(self, plugin: Plugin) -> tuple[str, str | None]:
        for scope in _SCOPES:
            ref = getattr(plugin, scope)
            if ref is not None and ref.id in self.exported:
                return "plugins", ref.id
        return "plugins", None

    def _body(self, entity: Entity, nested_in: str | None) -> dict[str, Any]:
        body = entity.model_dump(mode="json", exclude=_DROPPED, exclude_none=True)
        for scope in _SCOPES:
            ref = body.get(scope)
            if isinstance(ref, dict):
                if ref.get("id") == nested_in:
                    del body[scope]
                else:
                    body[scope] = self.names.get(ref["id"], ref["id"])
        return body

    def _nest(self, body: dict[str, Any], entity_id: str, *keys: str) -> dict[str, Any]:
        for key in keys:
            items = self.children.get((key, entity_id))
            if items:
                body[key] = items
        return body

    def _exported_parent(self, route: Route) -> str | None:
        parent = route.service.id if route.service else None
        return parent if parent in self.exported else None

    def route(self, route: Route) -> dict[str, Any]:
        body = self._body(route, self._exported_parent(route))
        return self._nest(body, route.id, "plugins")

    def plugin(self, plugin: Plugin) -> dict[str, Any]:
        body = self._body(plugin, self._plugin_place(plugin)[1])
        if self.redactor is not None:
            body["config"] = self.redactor.plugin_config(plugin.name, plugin.config)
        return body

    def credential(self, cred: KeyAuthCredential) -> dict[str, Any]:
        body = self._body(cred, cred.consumer.id)
        body.pop("expires_at", None)  # derived from ttl when synced
        del body["key_hash"]
        if self.redactor is None:
            body["key_hash"] = HASH_PREFIX + cred.key_hash
        else:
            body["key"] = self.redactor.mask(cred.key_hash)
        return body

    def document(self, select_tags: Sequence[str]) -> dict[str, Any]:
        doc: dict[str, Any] = {"_format_version": FORMAT_VERSION}
        if select_tags:
            doc["_info"] = {"select_tags": list(select_tags)}
        services = [
            self._nest(self._body(s, None), s.id, "routes", "plugins") for s in self.services
        ]
        consumers = [
            self._nest(self._body(c, None), c.id, "keyauth_credentials", "plugins")
            for c in self.consumers
        ]
        for key, items in (
            ("services", services),
            ("routes", self.children.get(("routes", None), [])),
            ("consumers", consumers),
            ("plugins", self.children.get(("plugins", None), [])),
        ):
            if items:
                doc[key] = items
        return doc


def export_document(
    reader: Reader,
    available: Mapping[str, PluginType[Any]],
    *,
    select_tags: Sequence[str] = (),
    sanitize: bool = False,
) -> dict[str, Any]:
    """The nested decK document of the stored entities carrying every tag in `select_tags`."""
    redactor = Redactor(available, bare=True) if sanitize else None
    return _Exporter(reader, select_tags, redactor).document(select_tags)
