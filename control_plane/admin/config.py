"""`POST /config`: apply a decK document (the whole of it, in one transaction) or, with
`?dry_run=true`, only report what would change."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from control_plane.admin.body import read_body
from control_plane.admin.context import AdminContext
from control_plane.admin.errors import DECLARATIVE_CONFIG, AdminError
from control_plane.declarative import DocumentError, parse_document
from control_plane.store.protocol import Reader, Writer
from control_plane.store.sync import Plan, apply_sync, plan_sync
from control_plane.store.sync_errors import SyncError, place
from gateway.entities import now_s

_INVALID = "invalid declarative configuration"


def _error(message: str, fields: dict[str, Any]) -> AdminError:
    body = {"code": DECLARATIVE_CONFIG, "name": _INVALID, "message": message, "fields": fields}
    return AdminError(400, body)


def add_config_route(app: FastAPI, ctx: AdminContext) -> None:
    @app.post("/config")
    async def config(request: Request) -> JSONResponse:
        body = await read_body(request)
        dry_run = request.query_params.get("dry_run", "").lower() in ("1", "true", "yes")
        try:
            doc = parse_document(body)
        except DocumentError as exc:
            fields: dict[str, Any] = {}
            place(fields, exc.path, exc.message)
            raise _error(f"declarative config is invalid: {exc}", fields) from None
        available = ctx.plugins()
        now = now_s()

        def plan(reader: Reader) -> Plan:
            return plan_sync(reader, doc, available, now)

        def apply(writer: Writer) -> Plan:
            result = plan(writer)
            apply_sync(writer, result)
            return result

        try:
            result = await (ctx.read(plan) if dry_run else ctx.write(apply))
        except SyncError as exc:
            raise _error(str(exc), exc.fields) from None
        return JSONResponse(result.report())
