"""Foreign-entity endpoints: the entity a foreign key points at, through its referrer
(`/routes/{route}/service`, `/plugins/{plugin}/consumer`, `/key-auths/{id}/consumer`).

As Kong: GET reads it, PATCH updates it, PUT replaces it (or, when the referrer has none yet,
creates one and points the referrer at it), DELETE is 405 (delete it by its own path) and
404 when the referrer has no such reference.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import Response

from control_plane.admin.body import read_body
from control_plane.admin.context import AdminContext
from control_plane.admin.crud import Written, apply_patch, client_input, respond, upsert
from control_plane.admin.errors import AdminError, not_found
from control_plane.admin.kinds import Kind
from control_plane.admin.openapi import operation
from control_plane.store.protocol import Reader, Writer
from gateway.entities import Entity, new_id, now_s


def _referrer(reader: Reader, kind: Kind, request: Request) -> Entity:
    found = kind.locate(reader, request.path_params["referrer"])
    if found is None:
        raise not_found()
    return found


def _target(reader: Reader, referrer: Entity, field: str, target: Kind) -> Entity:
    ref = getattr(referrer, field, None)
    found = None if ref is None else reader.get(target.model, ref.id)
    if found is None:
        raise not_found()
    return found


def add_foreign_routes(
    app: FastAPI, ctx: AdminContext, prefix: str, referrer: Kind, field: str, target: Kind
) -> None:
    """Mount `{prefix}/{referrer}/{field}` for the foreign key `field` of `referrer`."""
    path = f"{prefix}/{{referrer}}/{field}"

    async def read(request: Request) -> Response:
        def run(reader: Reader) -> Entity:
            return _target(reader, _referrer(reader, referrer, request), field, target)

        return respond(target, await ctx.read(run), {}, 200)

    async def patch(request: Request) -> Response:
        body = await read_body(request)
        now = now_s()
        available = ctx.plugins()

        def run(writer: Writer) -> Written:
            found = _target(writer, _referrer(writer, referrer, request), field, target)
            return apply_patch(writer, target, found, client_input(body), now, available)

        entity, shown = await ctx.write(run)
        return respond(target, entity, shown, 200)

    async def put(request: Request) -> Response:
        body = await read_body(request)
        now = now_s()
        available = ctx.plugins()

        def run(writer: Writer) -> Written:
            owner = _referrer(writer, referrer, request)
            data = {k: v for k, v in client_input(body).items() if k != "id"}
            ref = getattr(owner, field, None)
            if ref is not None:
                existing = writer.get(target.model, ref.id)
                return upsert(writer, target, existing, {**data, "id": ref.id}, now, available)
            created = upsert(writer, target, None, {**data, "id": new_id()}, now, available)
            link = {field: {"id": created[0].id}}
            apply_patch(writer, referrer, owner, link, now, available)
            return created

        entity, shown = await ctx.write(run)
        return respond(target, entity, shown, 200)

    async def delete(request: Request) -> Response:
        await ctx.read(
            lambda r: _target(r, _referrer(r, referrer, request), field, target),
        )
        raise AdminError(405, {"message": "Method not allowed"})

    read_only = operation(path, None)
    writes = operation(path, target)
    app.add_api_route(path, read, methods=["GET"], openapi_extra=read_only)
    app.add_api_route(path, patch, methods=["PATCH"], openapi_extra=writes)
    app.add_api_route(path, put, methods=["PUT"], openapi_extra=writes)
    app.add_api_route(path, delete, methods=["DELETE"], openapi_extra=read_only)
