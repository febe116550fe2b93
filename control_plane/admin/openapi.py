"""The Admin API's OpenAPI document (`/openapi.json`).

The entity endpoints read their bodies and query strings themselves (Kong accepts JSON and
form bodies, `size` as text, ...), so FastAPI cannot infer their parameters. This module states
them: path parameters, list options, and each kind's input schema, derived from the entity
models with the differences Kong's input has (no timestamps; a service `url`; a credential
`key` instead of a stored hash).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, ConfigDict, Field

from control_plane.admin.kinds import Kind
from gateway.entities import Ref

_REF_TEMPLATE = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"{(\w+)}")


class KeyAuthInput(BaseModel):
    """A key-auth credential as a client writes it (the key is hashed before storage)."""

    model_config = ConfigDict(extra="forbid", title="KeyAuthCredentialInput")

    id: str | None = None
    key: str | None = Field(default=None, description="Generated when omitted; shown once.")
    ttl: int | None = Field(default=None, ge=1, le=100_000_000, description="Seconds to live.")
    tags: list[str] | None = None
    consumer: Ref | None = None


LIST_PARAMETERS: list[dict[str, Any]] = [
    {"name": "size", "in": "query", "required": False, "schema": {"type": "integer"}},
    {"name": "offset", "in": "query", "required": False, "schema": {"type": "string"}},
    {"name": "tags", "in": "query", "required": False, "schema": {"type": "string"}},
]


def path_parameters(path: str) -> list[dict[str, Any]]:
    return [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in _PATH_PARAM.findall(path)
    ]


def input_schema_name(kind: Kind) -> str:
    return f"{kind.model.__name__}Input"


def operation(
    path: str, kind: Kind | None, *, listing: bool = False, summary: str | None = None
) -> dict[str, Any]:
    """`openapi_extra` for one generic endpoint: its parameters and (for writes) its body."""
    extra: dict[str, Any] = {"parameters": path_parameters(path)}
    if summary is not None:
        extra["summary"] = summary
    if listing:
        extra["parameters"] += LIST_PARAMETERS
    if kind is not None:
        ref = {"$ref": _REF_TEMPLATE.format(model=input_schema_name(kind))}
        extra["requestBody"] = {"required": True, "content": {"application/json": {"schema": ref}}}
    return extra


def _model_schema(model: type[BaseModel], defs: dict[str, Any]) -> dict[str, Any]:
    schema = model.model_json_schema(ref_template=_REF_TEMPLATE)
    defs.update(schema.pop("$defs", {}))
    return schema


def _entity_input(kind: Kind, defs: dict[str, Any]) -> dict[str, Any]:
    if kind.endpoint_key == "key_hash":
        return _model_schema(KeyAuthInput, defs)
    schema = _model_schema(kind.model, defs)
    props: dict[str, Any] = schema.setdefault("properties", {})
    for auto in ("created_at", "updated_at"):
        props.pop(auto, None)
    if kind.entity_name == "services":
        props["url"] = {"type": "string", "description": "Sets protocol, host, port and path."}
        schema["required"] = [f for f in schema.get("required", []) if f != "host"]
    schema["title"] = input_schema_name(kind)
    return schema


def install_openapi(app: FastAPI, kinds: list[Kind]) -> None:
    """Serve a document whose components hold every kind's input schema."""

    def build() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        document = get_openapi(
            title="Lockgate Admin API",
            version=app.version,
            description="Kong-compatible Admin API (see docs/admin-api.md).",
            routes=app.routes,
        )
        defs: dict[str, Any] = {}
        for kind in kinds:
            defs[input_schema_name(kind)] = _entity_input(kind, defs)
        schemas = document.setdefault("components", {}).setdefault("schemas", {})
        schemas.update(defs)
        document["components"]["securitySchemes"] = {
            "adminToken": {"type": "apiKey", "in": "header", "name": "Kong-Admin-Token"}
        }
        document["security"] = [{"adminToken": []}]
        app.openapi_schema = document
        return document

    app.openapi = build  # type: ignore[method-assign]
