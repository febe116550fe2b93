"""Plugin configuration forms drawn from each plugin's JSON Schema (what
`GET /schemas/plugins/{name}` serves), and read back into a `config` object.

Widgets by schema: booleans are checkboxes, numbers number inputs, enums selects, strings text
inputs, arrays of strings one item per line, and anything nested (records, arrays of records,
maps) a JSON editor. Lua plugins' phases are code editors, one per chunk, whose compile
errors come back beside them. Blank inputs fall back to the schema's default.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from control_plane.ui.context import Form

Widget = Literal["bool", "number", "integer", "select", "text", "lines", "code", "json"]
LUA_PLUGINS = frozenset({"pre-function", "post-function"})
"""Plugins whose string-array fields are Lua chunks (Kong's serverless functions)."""
PREFIX = "config."


@dataclass(frozen=True, slots=True)
class PluginField:
    name: str
    label: str
    widget: Widget
    nullable: bool = False
    options: tuple[str, ...] = ()
    default: Any = None
    description: str = ""

    @property
    def input_name(self) -> str:
        return PREFIX + self.name


def plugin_schema(plugin: Any) -> dict[str, Any]:
    """A plugin's config schema, as the Admin API's `/schemas/plugins/{name}` serves it."""
    schema: dict[str, Any] = plugin.config_model.model_json_schema(by_alias=True)
    return schema


def _resolve(node: Mapping[str, Any], defs: Mapping[str, Any]) -> Mapping[str, Any]:
    ref = node.get("$ref")
    if isinstance(ref, str) and ref.startswith("#/$defs/"):
        return dict(defs.get(ref.removeprefix("#/$defs/"), {}))
    return node


def _field(plugin: str, name: str, prop: Mapping[str, Any], defs: Mapping[str, Any]) -> PluginField:
    label = str(prop.get("title") or name.replace("_", " ").capitalize())
    description = str(prop.get("description", ""))
    default = prop.get("default")
    node = _resolve(prop, defs)
    nullable = False
    variants = node.get("anyOf")
    if isinstance(variants, list):
        rest = [_resolve(v, defs) for v in variants if v.get("type") != "null"]
        nullable = len(rest) < len(variants)
        node = rest[0] if len(rest) == 1 else {"type": "object"}
    kind = node.get("type")
    enum = node.get("enum")

    def make(widget: Widget, options: tuple[str, ...] = ()) -> PluginField:
        return PluginField(name, label, widget, nullable, options, default, description)

    if isinstance(enum, list) and all(isinstance(v, str) for v in enum):
        return make("select", tuple(enum))
    if kind == "boolean":
        return make("bool")
    if kind in ("integer", "number"):
        return make("integer" if kind == "integer" else "number")
    if kind == "string":
        return make("text")
    if kind == "array" and _resolve(node.get("items", {}), defs).get("type") == "string":
        return make("code" if plugin in LUA_PLUGINS else "lines")
    return make("json")


def plugin_fields(plugin: str, schema: Mapping[str, Any]) -> list[PluginField]:
    """The form fields of a plugin's config, in the schema's order."""
    defs = schema.get("$defs", {})
    props = schema.get("properties", {})
    return [_field(plugin, name, prop, defs) for name, prop in props.items()]


def shown(field: PluginField, config: Mapping[str, Any]) -> Any:
    """The form value of a config field (stored config, or the default for a new plugin)."""
    value = config.get(field.name, field.default)
    if field.widget == "bool":
        return bool(value)
    if field.widget == "code":
        return [str(v) for v in value or ()]
    if field.widget == "lines":
        return "\n".join(str(v) for v in value or ())
    if field.widget == "json":
        return "" if value is None else json.dumps(value, indent=2)
    return "" if value is None else str(value)


def form_shown(fields: list[PluginField], form: Form) -> dict[str, Any]:
    """What the user typed, to redraw a refused form."""
    out: dict[str, Any] = {}
    for field in fields:
        if field.widget == "bool":
            out[field.name] = form.has(field.input_name)
        elif field.widget == "code":
            out[field.name] = [c for c in form.getlist(field.input_name) if c.strip()]
        else:
            out[field.name] = form.get(field.input_name)
    return out


def read_config(fields: list[PluginField], form: Form) -> tuple[dict[str, Any], dict[str, str]]:
    """The `config` a form submits, and messages for inputs that could not be read."""
    config: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for field in fields:
        name = field.input_name
        if field.widget == "bool":
            config[field.name] = form.has(name)
            continue
        if field.widget == "code":
            config[field.name] = [c.replace("\r\n", "\n") for c in form.getlist(name) if c.strip()]
            continue
        raw = form.get(name).strip()
        if not raw:
            if field.nullable:
                config[field.name] = None
            continue
        if field.widget == "lines":
            config[field.name] = [line.strip() for line in raw.splitlines() if line.strip()]
        elif field.widget in ("integer", "number"):
            try:
                config[field.name] = int(raw) if field.widget == "integer" else float(raw)
            except ValueError:
                errors[field.name] = "expected a number"
        elif field.widget == "json":
            try:
                config[field.name] = json.loads(raw)
            except ValueError as exc:
                errors[field.name] = f"invalid JSON: {exc}"
        else:
            config[field.name] = raw
    return config, errors
