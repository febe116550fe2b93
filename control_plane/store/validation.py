"""Turn Kong-shaped input (a dict from JSON) into validated entities, or a Kong SchemaViolation.

The entity models in gateway.entities hold the field rules; this module adds what only the
control plane checks at write time: Kong's whole-entity rules (`@entity`), the service `url`
shorthand, plugin names and scopes, and plugin configs validated (defaults filled) by each
plugin's `config_model`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from control_plane.store.errors import ForeignKeyViolation, SchemaViolation
from control_plane.store.protocol import Reader
from gateway.entities import Consumer, Entity, KeyAuthCredential, Plugin, Route, Service
from gateway.plugins.base import Plugin as PluginType
from gateway.vault import UnresolvedReference, check_reference, references_at

M = TypeVar("M", bound=BaseModel)

UUID_RE = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")

_TYPE_MESSAGES = {
    "missing": "required field missing",
    "extra_forbidden": "unknown field",
    "int_type": "expected an integer",
    "int_parsing": "expected an integer",
    "int_from_float": "expected an integer",
    "string_type": "expected a string",
    "bool_type": "expected a boolean",
    "bool_parsing": "expected a boolean",
    "float_type": "expected a number",
    "float_parsing": "expected a number",
    "list_type": "expected an array",
    "set_type": "expected a set",
    "dict_type": "expected a map",
    "model_type": "expected a record",
    "model_attributes_type": "expected a record",
}
_BOUNDS = {
    "less_than_equal": ("le", "at most"),
    "less_than": ("lt", "less than"),
    "greater_than_equal": ("ge", "at least"),
    "greater_than": ("gt", "greater than"),
}
_DEFAULT_PORTS = {"http": 80, "https": 443, "grpc": 80, "grpcs": 443, "ws": 80, "wss": 443}
_REFS: dict[str, tuple[type[Entity], str]] = {
    "service": (Service, "name"),
    "route": (Route, "name"),
    "consumer": (Consumer, "username"),
}


def error_message(error: Mapping[str, Any]) -> str:
    """Kong's wording for one pydantic error."""
    kind = str(error["type"])
    if kind in _TYPE_MESSAGES:
        return _TYPE_MESSAGES[kind]
    if kind == "literal_error":
        expected = str(error.get("ctx", {}).get("expected", ""))
        return "expected one of: " + expected.replace("'", "").replace(" or ", ", ")
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return f"value should be {words} {error.get('ctx', {}).get(key)}"
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def violation(exc: ValidationError, prefix: tuple[str, ...] = ()) -> SchemaViolation:
    """Convert pydantic errors to Kong's nested `fields` (array indexes folded away) and
    dotted-path messages (indexes kept)."""
    fields: dict[str, Any] = {}
    messages: list[tuple[str, str]] = []
    for error in exc.errors():
        loc = prefix + tuple(str(part) for part in error["loc"])
        message = error_message(error)
        messages.append((".".join(loc) or "@entity", message))
        _nest(
            fields,
            [
                p
                for p, raw in zip(loc, (*prefix, *error["loc"]), strict=True)
                if not isinstance(raw, int)
            ],
            message,
        )
    return SchemaViolation(fields, messages)


def _nest(fields: dict[str, Any], path: list[str], message: str) -> None:
    if not path:
        fields.setdefault("@entity", []).append(message)
        return
    node = fields
    for part in path[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            return  # a shallower error already names this field
        node = child
    node.setdefault(path[-1], message)


def merge(errors: list[SchemaViolation]) -> SchemaViolation:
    fields: dict[str, Any] = {}
    messages: list[tuple[str, str]] = []
    for err in errors:
        messages.extend(err.messages)
        for key, value in err.fields.items():
            fields.setdefault(key, value)
    return SchemaViolation(fields, messages)


def is_uuid(value: str) -> bool:
    return UUID_RE.match(value) is not None


def check_id(data: Mapping[str, Any]) -> None:
    """Kong's ids are uuids; a client-chosen id must be one."""
    value = data.get("id")
    if value is not None and not (isinstance(value, str) and is_uuid(value)):
        raise SchemaViolation({"id": "expected a valid UUID"}, [("id", "expected a valid UUID")])


def _validate(model: type[M], data: Mapping[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise violation(exc) from None


def expand_service_url(data: Mapping[str, Any]) -> dict[str, Any]:
    """Apply Kong's `url` shorthand: it sets protocol, host, port (80/443 by default) and path."""
    out = dict(data)
    url = out.pop("url", None)
    if url is None:
        return out
    if not isinstance(url, str):
        raise SchemaViolation({"url": "expected a string"}, [("url", "expected a string")])
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise SchemaViolation(
            {"url": f"invalid url: {exc}"}, [("url", f"invalid url: {exc}")]
        ) from None
    if not parts.scheme or not parts.hostname:
        msg = "missing host in url" if parts.scheme else "missing scheme in url"
        raise SchemaViolation({"url": msg}, [("url", msg)])
    out["protocol"] = parts.scheme
    out["host"] = parts.hostname
    out["port"] = port if port is not None else _DEFAULT_PORTS.get(parts.scheme, 80)
    out["path"] = parts.path or None
    return out


MAX_NAME_LENGTH = 255
"""Longest name, username, custom_id or instance_name (the database columns' width)."""

_NO_PATH_PROTOCOLS = frozenset({"tcp", "tls", "udp", "grpc", "grpcs", "tls_passthrough"})
_ROUTE_PROTOCOL_SETS = (
    frozenset({"http", "https"}),
    frozenset({"tcp", "tls", "udp"}),
    frozenset({"tls_passthrough"}),
    frozenset({"grpc", "grpcs"}),
)
_ROUTE_PROTOCOLS: frozenset[str] = frozenset(p for group in _ROUTE_PROTOCOL_SETS for p in group)


def _field_error(path: str, message: str) -> SchemaViolation:
    return SchemaViolation({path: message}, [(path, message)])


def _check_columns(data: Mapping[str, Any], *fields: str) -> None:
    """Values stored in indexed columns: bounded length and no NUL (PostgreSQL refuses it)."""
    errors: list[SchemaViolation] = []
    for field in fields:
        value = data.get(field)
        if not isinstance(value, str):
            continue
        if len(value) > MAX_NAME_LENGTH:
            errors.append(_field_error(field, f"length must be at most {MAX_NAME_LENGTH}"))
        elif "\x00" in value:
            errors.append(_field_error(field, "invalid value: contains a NUL character"))
    if errors:
        raise merge(errors)


def build_service(data: Mapping[str, Any]) -> Service:
    expanded = expand_service_url(data)
    _check_columns(expanded, "name")
    service = _validate(Service, expanded)
    if service.protocol in _NO_PATH_PROTOCOLS and service.path is not None:
        msg = "failed conditional validation given value of field 'protocol'"
        raise SchemaViolation(
            {"@entity": [msg], "path": "value must be null"},
            [("@entity", msg), ("path", "value must be null")],
        )
    return service


def _check_hosts(hosts: list[str] | None) -> str | None:
    for host in hosts or []:
        if host.count("*") > 1:
            return "invalid wildcard: must have at most one wildcard"
        labels = host.split(".")
        if "*" in host and not (labels[0] == "*" or labels[-1] == "*"):
            return "invalid wildcard: must be placed at leftmost or rightmost label"
        if not host or any(not label for label in labels) or "\x00" in host:
            return f"invalid value: {host}"
    return None


def _route_field_errors(route: Route) -> list[SchemaViolation]:
    """Kong's per-field route rules the model does not state."""
    errors: list[SchemaViolation] = []
    protocols = set(route.protocols)
    unknown = sorted(protocols - _ROUTE_PROTOCOLS)
    if unknown:
        names = ", ".join(sorted(_ROUTE_PROTOCOLS))
        errors.append(_field_error("protocols", f"expected one of: {names}"))
    elif not any(protocols <= allowed for allowed in _ROUTE_PROTOCOL_SETS):
        sets = ", ".join(
            "(" + ", ".join(f"'{p}'" for p in sorted(group)) + ")" for group in _ROUTE_PROTOCOL_SETS
        )
        errors.append(_field_error("protocols", f"these sets are mutually exclusive: {sets}"))
    host_error = _check_hosts(route.hosts)
    if host_error is not None:
        errors.append(_field_error("hosts", host_error))
    if route.headers and any(name.lower() == "host" for name in route.headers):
        msg = "cannot contain 'host' header, which must be specified in the 'hosts' attribute"
        errors.append(_field_error("headers", msg))
    if protocols & {"grpc", "grpcs"}:
        if route.strip_path:
            errors.append(_field_error("strip_path", "value must be false"))
        if route.methods:
            errors.append(_field_error("methods", "value must be null"))
    return errors


def build_route(data: Mapping[str, Any]) -> Route:
    _check_columns(data, "name")
    protocols = data.get("protocols")
    if (
        isinstance(protocols, list)
        and any(p in ("grpc", "grpcs") for p in protocols if isinstance(p, str))
        and "strip_path" not in data
    ):
        data = {**data, "strip_path": False}  # Kong's default for gRPC routes
    route = _validate(Route, data)
    field_errors = _route_field_errors(route)
    if field_errors:
        raise merge(field_errors)
    protocols = set(route.protocols)
    matchers = {
        "methods": route.methods,
        "hosts": route.hosts,
        "headers": route.headers,
        "paths": route.paths,
        "snis": route.snis,
    }

    def names(keys: tuple[str, ...]) -> str:
        return ", ".join(f"'{k}'" for k in keys)

    base = ("methods", "hosts", "headers", "paths")
    if "https" in protocols and not any(matchers[k] for k in (*base, "snis")):
        msg = f"must set one of {names((*base, 'snis'))} when 'protocols' is 'https'"
    elif (
        protocols & {"http", "grpc"}
        and not protocols & {"https", "grpcs"}
        and not any(matchers[k] for k in base)
    ):
        msg = f"must set one of {names(base)} when 'protocols' is 'grpc', 'http'"
    else:
        return route
    raise SchemaViolation({"@entity": [msg]}, [("@entity", msg)])


def build_consumer(data: Mapping[str, Any]) -> Consumer:
    _check_columns(data, "username", "custom_id")
    consumer = _validate(Consumer, data)
    if not consumer.username and not consumer.custom_id:
        msg = "at least one of these fields must be non-empty: 'custom_id', 'username'"
        raise SchemaViolation({"@entity": [msg]}, [("@entity", msg)])
    return consumer


def build_credential(data: Mapping[str, Any]) -> KeyAuthCredential:
    cred = _validate(KeyAuthCredential, data)
    if cred.ttl is not None and not 0 < cred.ttl <= 100_000_000:
        msg = "value should be between 1 and 100000000"
        raise SchemaViolation({"ttl": msg}, [("ttl", msg)])
    return cred


def build_plugin(data: Mapping[str, Any], available: Mapping[str, PluginType[Any]]) -> Plugin:
    """Validate a plugin entity and its config; the stored config has defaults filled."""
    _check_columns(data, "instance_name")
    errors: list[SchemaViolation] = []
    name = data.get("name")
    plugin_type = available.get(name) if isinstance(name, str) else None
    config: Any = data.get("config") or {}
    if isinstance(name, str) and plugin_type is None:
        msg = f"plugin '{name}' not enabled; add it to the 'plugins' configuration property"
        errors.append(SchemaViolation({"name": msg}, [("name", msg)]))
    if plugin_type is not None:
        if data.get("consumer") is not None and not plugin_type.allows_consumer_scope:
            msg = "value must be null"
            errors.append(SchemaViolation({"consumer": msg}, [("consumer", msg)]))
        try:
            validated = plugin_type.validate(config)
            config = validated.model_dump(mode="json", by_alias=True)
        except ValidationError as exc:
            errors.append(violation(exc, ("config",)))
            config = {}
        except (TypeError, ValueError) as exc:
            errors.append(SchemaViolation({"config": str(exc)}, [("config", str(exc))]))
            config = {}
        if isinstance(config, dict):
            errors.extend(_reference_violations(config, plugin_type.referenceable))
    try:
        plugin = _validate(Plugin, {**data, "config": config if isinstance(config, dict) else {}})
    except SchemaViolation as exc:
        errors.append(exc)
    if errors:
        raise merge(errors)
    return plugin


def _reference_violations(config: Mapping[str, Any], paths: Sequence[str]) -> list[SchemaViolation]:
    """Vault references (gateway/vault.py) in referenceable fields that no data plane could
    resolve: malformed, another vault than `env`, an unknown option, a LOCKGATE_* variable.
    Whether the variable is set is each data plane's business."""
    found: list[SchemaViolation] = []
    for loc, reference in references_at(config, paths):
        try:
            check_reference(reference)
        except UnresolvedReference as exc:
            message = f"invalid vault reference: {exc}"
            fields: dict[str, Any] = {}
            _nest(fields, ["config", *(str(p) for p in loc if not isinstance(p, int))], message)
            dotted = ".".join(("config", *(str(p) for p in loc)))
            found.append(SchemaViolation(fields, [(dotted, message)]))
    return found


def resolve_refs(reader: Reader, data: Mapping[str, Any]) -> dict[str, Any]:
    """Replace foreign keys given by endpoint key (`{"name": "svc"}`, `{"username": "u"}`)
    with `{"id": ...}`; raises ForeignKeyViolation when none matches."""
    out = dict(data)
    for field, (model, key) in _REFS.items():
        ref = out.get(field)
        if isinstance(ref, dict) and "id" not in ref and isinstance(ref.get(key), str):
            found = reader.find(model, key, ref[key])
            if found is None:
                parent = {Service: "services", Route: "routes", Consumer: "consumers"}[model]
                raise ForeignKeyViolation(
                    f"the foreign key '{{{key}=\"{ref[key]}\"}}' does not reference an "
                    f"existing '{parent}' entity.",
                    field,
                    ref,
                )
            out[field] = {"id": found.id}
    return out
