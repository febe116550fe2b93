"""`/schemas/...`: the JSON Schema of a plugin's config or an entity's input, and Kong's
validation endpoints, which check a body as a write would and store nothing."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from control_plane.admin.body import read_body
from control_plane.admin.context import AdminContext
from control_plane.admin.crud import client_input
from control_plane.admin.errors import AdminError
from control_plane.admin.kinds import CONSUMERS, CREDENTIALS, PLUGINS, ROUTES, SERVICES, Kind
from control_plane.admin.openapi import KeyAuthInput, operation
from control_plane.store.validation import check_id
from gateway.entities import new_id, now_s

_KINDS: dict[str, Kind] = {
    kind.entity_name: kind for kind in (SERVICES, ROUTES, CONSUMERS, PLUGINS, CREDENTIALS)
}
_OK = {"message": "schema validation successful"}


def _placeholder_refs(data: dict[str, Any]) -> dict[str, Any]:
    """Validation does not look foreign keys up: any reference shape Kong accepts
    (`{"id": ...}` or `{"name": ...}`) stands for an existing entity."""
    out = dict(data)
    for field in ("service", "route", "consumer"):
        ref = out.get(field)
        if isinstance(ref, dict) and ref and "id" not in ref:
            out[field] = {"id": new_id()}
    return out


def _validate(ctx: AdminContext, kind: Kind, body: dict[str, Any]) -> None:
    now = now_s()
    data = _placeholder_refs(client_input(body))
    check_id(data)
    prepared = kind.prepare(data, now, True)
    kind.build({**prepared.data, "created_at": now, "updated_at": now}, ctx.plugins())


def add_schema_routes(app: FastAPI, ctx: AdminContext) -> None:
    """Mount `/schemas/plugins/{name}`, `/schemas/{entity}` and their `validate` endpoints."""

    @app.post("/schemas/plugins/validate", openapi_extra=operation("", PLUGINS))
    async def validate_plugin(request: Request) -> JSONResponse:
        _validate(ctx, PLUGINS, await read_body(request))
        return JSONResponse(_OK)

    @app.get("/schemas/plugins/{name}")
    async def plugin_schema(name: str) -> JSONResponse:
        plugin = ctx.plugins().get(name)
        if plugin is None:
            raise AdminError(404, {"message": f"No plugin named '{name}'"})
        schema = plugin.config_model.model_json_schema(by_alias=True)
        schema.setdefault("title", f"{name} config")
        return JSONResponse(schema)

    @app.post(
        "/schemas/{entity}/validate",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": {"type": "object"}}},
            }
        },
    )
    async def validate_entity(entity: str, request: Request) -> JSONResponse:
        kind = _KINDS.get(entity)
        if kind is None:
            raise AdminError(404, {"message": f"No entity named '{entity}'"})
        _validate(ctx, kind, await read_body(request))
        return JSONResponse(_OK)

    @app.get("/schemas/{entity}")
    async def entity_schema(entity: str) -> JSONResponse:
        kind = _KINDS.get(entity)
        if kind is None:
            raise AdminError(404, {"message": f"No entity named '{entity}'"})
        model = KeyAuthInput if kind is CREDENTIALS else kind.model
        return JSONResponse(model.model_json_schema())
