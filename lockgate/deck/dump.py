"""Turning the Admin API's flat entity lists into a nested decK 3.0 document, and its YAML.

Routes nest under their service, plugins under their most specific scope (route, then service,
then consumer; other scopes stay as name references), credentials under their consumer. Only
fields `lockgate deck` accepts are written, so a dump is itself a valid input file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

from lockgate.deck.fields import FORMAT_VERSION, KINDS

_TIMESTAMPS = ("created_at", "updated_at")

CREDENTIALS_NOTE = (
    "Key-auth keys are stored hashed and cannot be exported: each keyauth_credential is",
    "listed by id only (no key). Keep the id so that a sync keeps the stored key.",
)


@dataclass(frozen=True, slots=True)
class AdminState:
    """The entity lists read from the Admin API, in Kong's shapes (foreign keys as `{"id"}`)."""

    services: list[dict[str, Any]]
    routes: list[dict[str, Any]]
    consumers: list[dict[str, Any]]
    plugins: list[dict[str, Any]]
    keyauth_credentials: list[dict[str, Any]]


def _ref_id(value: object) -> str | None:
    if isinstance(value, Mapping):
        ref = value.get("id")
        return ref if isinstance(ref, str) else None
    return None


def _sort_key(kind: str, entity: Mapping[str, Any]) -> tuple[str, str]:
    return (KINDS[kind].label(entity) or "", str(entity.get("id") or ""))


class _Builder:
    def __init__(self, state: AdminState, with_id: bool) -> None:
        self.state = state
        self.with_id = with_id
        self.names: dict[str, dict[str, str]] = {
            kind: {
                str(entity["id"]): KINDS[kind].label(entity) or str(entity["id"])
                for entity in entities
                if "id" in entity
            }
            for kind, entities in (
                ("service", state.services),
                ("route", state.routes),
                ("consumer", state.consumers),
            )
        }

    def clean(self, kind: str, entity: Mapping[str, Any], parent: str | None) -> dict[str, Any]:
        """Keep the accepted, non-null fields, the label first; foreign keys become names."""
        spec = KINDS[kind]
        first = [name for name in spec.label_fields if name in entity]
        out: dict[str, Any] = {}
        for key in [*first, *entity]:
            value = entity[key]
            if key in out or value is None or key not in spec.fields:
                continue
            if key == "id" and not self.with_id and kind != "keyauth_credential":
                continue
            if key in _TIMESTAMPS and not self.with_id:
                continue
            if key == "key" and kind == "keyauth_credential":
                continue  # whatever the API shows is not the plaintext key
            if key in self.names:
                if key == parent:
                    continue  # implied by nesting
                ref = _ref_id(value)
                value = self.names[key].get(ref, ref) if ref else value
            out[key] = value
        return out

    def plugins_of(self, scope: str | None, owner_id: str | None) -> list[dict[str, Any]]:
        chosen = [
            plugin
            for plugin in self.state.plugins
            if _plugin_parent(plugin, self.names) == (scope, owner_id)
        ]
        chosen.sort(key=lambda plugin: _sort_key("plugin", plugin))
        return [self.clean("plugin", plugin, scope) for plugin in chosen]

    def service(self, service: Mapping[str, Any]) -> dict[str, Any]:
        out = self.clean("service", service, None)
        service_id = service.get("id")
        routes = [r for r in self.state.routes if _ref_id(r.get("service")) == service_id]
        _put(out, "routes", [self.route(r) for r in sorted(routes, key=_route_key)])
        _put(out, "plugins", self.plugins_of("service", str(service_id)))
        return out

    def route(self, route: Mapping[str, Any], parent: str | None = "service") -> dict[str, Any]:
        out = self.clean("route", route, parent)
        _put(out, "plugins", self.plugins_of("route", str(route.get("id"))))
        return out

    def consumer(self, consumer: Mapping[str, Any]) -> dict[str, Any]:
        out = self.clean("consumer", consumer, None)
        consumer_id = consumer.get("id")
        credentials = [
            self.clean("keyauth_credential", credential, "consumer")
            for credential in sorted(
                self.state.keyauth_credentials, key=lambda c: str(c.get("id") or "")
            )
            if _ref_id(credential.get("consumer")) == consumer_id
        ]
        _put(out, "keyauth_credentials", credentials)
        _put(out, "plugins", self.plugins_of("consumer", str(consumer_id)))
        return out


def _route_key(route: Mapping[str, Any]) -> tuple[str, str]:
    return _sort_key("route", route)


def _put(out: dict[str, Any], key: str, items: list[dict[str, Any]]) -> None:
    """Add a child list only when it has items, as decK dumps do."""
    if items:
        out[key] = items


def _plugin_parent(
    plugin: Mapping[str, Any], names: Mapping[str, Mapping[str, str]]
) -> tuple[str | None, str | None]:
    """The entity a plugin nests under: its route, else service, else consumer, else global.

    A scope whose entity was not exported (dangling) is skipped, so the plugin still appears.
    """
    for scope in ("route", "service", "consumer"):
        ref = _ref_id(plugin.get(scope))
        if ref is not None and ref in names[scope]:
            return scope, ref
    return None, None


def build_document(state: AdminState, *, with_id: bool = False) -> dict[str, Any]:
    """The nested decK document for `state`; ids and timestamps only `with_id` (credentials
    always keep their id: without a readable key it is the only way to match them)."""
    builder = _Builder(state, with_id)
    service_ids = set(builder.names["service"])
    document: dict[str, Any] = {"_format_version": FORMAT_VERSION}
    services = sorted(state.services, key=lambda s: _sort_key("service", s))
    loose_routes = sorted(
        (r for r in state.routes if _ref_id(r.get("service")) not in service_ids),
        key=_route_key,
    )
    consumers = sorted(state.consumers, key=lambda c: _sort_key("consumer", c))
    _put(document, "services", [builder.service(s) for s in services])
    _put(document, "routes", [builder.route(r, parent=None) for r in loose_routes])
    _put(document, "consumers", [builder.consumer(c) for c in consumers])
    _put(document, "plugins", builder.plugins_of(None, None))
    return document


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
