"""`/config`: the declarative config as a whole.

`POST /config` applies a decK document (the whole of it, in one transaction) or, with
`?dry_run=true`, only reports what would change; the answer is decK's `diff --json-output`
shape (control_plane.store.sync_report). `GET /config` exports the store as a decK document
(control_plane.declarative_export): `?select_tags=a,b` limits it to entities carrying all those
tags, `?sanitize=true` replaces secrets by salted digests.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from control_plane.admin.body import read_body
from control_plane.admin.context import AdminContext
from control_plane.admin.errors import DECLARATIVE_CONFIG, AdminError, bad_request
from control_plane.admin.roles import TRUE_VALUES
from control_plane.declarative import DocumentError, parse_document, parse_tags
from control_plane.declarative_export import export_document
from control_plane.declarative_secrets import Redactor
from control_plane.store.protocol import Reader, Writer
from control_plane.store.sync import Plan, plan_sync
from control_plane.store.sync_apply import apply_sync
from control_plane.store.sync_errors import SyncError, place
from control_plane.store.sync_report import report
from gateway.entities import now_s

_INVALID = "invalid declarative configuration"


def _error(message: str, fields: dict[str, Any]) -> AdminError:
    body = {"code": DECLARATIVE_CONFIG, "name": _INVALID, "message": message, "fields": fields}
    return AdminError(400, body)


def _flag(request: Request, name: str) -> bool:
    return request.query_params.get(name, "").lower() in TRUE_VALUES


def _query_tags(request: Request) -> tuple[str, ...]:
    """`?select_tags=a,b` (or the parameter repeated) as a validated tag list."""
    raw = [tag for value in request.query_params.getlist("select_tags") for tag in value.split(",")]
    try:
        return parse_tags(raw, "select_tags")
    except DocumentError as exc:
        raise bad_request(str(exc)) from None


def add_config_route(app: FastAPI, ctx: AdminContext) -> None:
    @app.post("/config")
    async def post_config(request: Request) -> JSONResponse:
        body = await read_body(request)
        dry_run = _flag(request, "dry_run")
        try:
            doc = parse_document(body)
        except DocumentError as exc:
            fields: dict[str, Any] = {}
            place(fields, exc.path, exc.message)
            raise _error(f"declarative config is invalid: {exc}", fields) from None
        del body  # the parsed document holds what is needed; let the raw one go
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
        return JSONResponse(report(result, Redactor(available)))

    @app.get("/config")
    async def get_config(request: Request) -> JSONResponse:
        tags = _query_tags(request)
        sanitize = _flag(request, "sanitize")
        available = ctx.plugins()
        document = await ctx.read(
            lambda reader: export_document(reader, available, select_tags=tags, sanitize=sanitize)
        )
        return JSONResponse(document)
