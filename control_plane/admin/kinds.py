"""The entity kinds the Admin API serves and what differs between them: the endpoint key
(`/services/{name}`), the builder that validates input, and credential key handling."""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from control_plane.admin.caller import current_caller
from control_plane.declarative_secrets import Redactor
from control_plane.store.errors import single
from control_plane.store.protocol import Reader
from control_plane.store.validation import (
    build_consumer,
    build_credential,
    build_plugin,
    build_route,
    build_service,
    is_uuid,
)
from gateway.credentials import hash_key
from gateway.entities import (
    Consumer,
    Entity,
    KeyAuthCredential,
    Plugin,
    Route,
    Service,
    now_s,
)
from gateway.plugins import registry
from gateway.plugins.base import Plugin as PluginType

AUTO_FIELDS = ("created_at", "updated_at")


@dataclass(frozen=True, slots=True)
class Prepared:
    """Input ready for the builder, plus fields shown once in the response (a new key)."""

    data: dict[str, Any]
    shown: dict[str, Any]


def _no_prepare(data: dict[str, Any], now: int, creating: bool) -> Prepared:
    return Prepared(data, {})


def _hidden(entity: Entity) -> dict[str, Any]:
    return entity.model_dump(mode="json")


def _render_plugin(entity: Entity) -> dict[str, Any]:
    """A plugin as the caller may see it: viewers get secret config fields (provider keys, the
    schema's writeOnly fields) masked; admins and editors see them, as in Kong."""
    doc = entity.model_dump(mode="json")
    caller = current_caller()
    if caller is not None and caller.role == "viewer":
        doc["config"] = Redactor(registry()).plugin_config(doc["name"], doc.get("config") or {})
    return doc


Builder = Callable[[Mapping[str, Any], Mapping[str, PluginType[Any]]], Entity]


@dataclass(frozen=True, slots=True)
class Kind:
    model: type[Entity]
    entity_name: str
    """Kong's table name, used in messages (`services`)."""
    endpoint_key: str | None
    """Column that identifies the entity in paths besides its id."""
    build: Builder
    """Validate builder input into the entity (plugins need the available plugin types)."""
    prepare: Callable[[dict[str, Any], int, bool], Prepared] = _no_prepare
    """Turn raw input into builder input (`creating` is True for POST and PUT)."""
    render: Callable[[Entity], dict[str, Any]] = _hidden

    def locate(self, reader: Reader, ident: str) -> Entity | None:
        """The entity a path segment names: by id if it is a uuid, else by endpoint key."""
        if is_uuid(ident):
            found = reader.get(self.model, ident)
            if found is not None:
                return found
        if self.endpoint_key is None:
            return None
        value = hash_key(ident) if self.endpoint_key == "key_hash" else ident
        return reader.find(self.model, self.endpoint_key, value)

    def identity(self, ident: str) -> dict[str, Any]:
        """The fields a PUT path sets: `id` for a uuid, else the endpoint key."""
        if is_uuid(ident) or self.endpoint_key is None:
            return {"id": ident}
        if self.endpoint_key == "key_hash":
            return {"key": ident}
        return {self.endpoint_key: ident}


def _prepare_credential(data: dict[str, Any], now: int, creating: bool) -> Prepared:
    """Hash the key (generating one on create when omitted) and turn `ttl` into `expires_at`.
    The plaintext is returned in `shown` for the one response that may carry it."""
    out = dict(data)
    shown: dict[str, Any] = {}
    if "key_hash" in out:
        raise single("key_hash", "unknown field")
    key = out.pop("key", None)
    if key is None and creating:
        key = secrets.token_urlsafe(32)
    if key is not None:
        if not isinstance(key, str) or not key:
            raise single(
                "key",
                "expected a non-empty string" if isinstance(key, str) else "expected a string",
            )
        out["key_hash"] = hash_key(key)
        shown["key"] = key
    if "ttl" in out:
        ttl = out["ttl"]
        if ttl is None:
            out["expires_at"] = None
        elif isinstance(ttl, int) and not isinstance(ttl, bool):
            out["expires_at"] = now + ttl
    elif creating:
        out["expires_at"] = None
    return Prepared(out, shown)


def _render_credential(entity: Entity) -> dict[str, Any]:
    """The credential as reads show it: no key, no hash, and `ttl` the seconds it has left."""
    body = entity.model_dump(mode="json")
    body.pop("key_hash", None)  # the key is shown once, on create; its hash never
    expires_at = body.get("expires_at")
    if isinstance(expires_at, int):
        body["ttl"] = max(0, expires_at - now_s())
    return body


def _plain(build: Callable[[Mapping[str, Any]], Entity]) -> Builder:
    return lambda data, _available: build(data)


SERVICES = Kind(Service, "services", "name", _plain(build_service))
ROUTES = Kind(Route, "routes", "name", _plain(build_route))
CONSUMERS = Kind(Consumer, "consumers", "username", _plain(build_consumer))
PLUGINS = Kind(Plugin, "plugins", None, build_plugin, render=_render_plugin)
CREDENTIALS = Kind(
    KeyAuthCredential,
    "keyauth_credentials",
    "key_hash",
    _plain(build_credential),
    _prepare_credential,
    _render_credential,
)
