"""Generic Kong entity endpoints: list, create, read, update (PATCH), upsert (PUT), delete.

Each factory returns an endpoint for one kind, optionally nested under a parent
(`/services/{service}/routes`): the parent is resolved from the path (404 if missing), lists
are filtered by it, and writes set the child's foreign key to it (the path wins over the body).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from control_plane.admin.body import read_body
from control_plane.admin.context import AdminContext
from control_plane.admin.errors import INVALID_OFFSET, INVALID_SIZE, AdminError, not_found
from control_plane.admin.kinds import AUTO_FIELDS, Kind
from control_plane.store.errors import UniqueViolation
from control_plane.store.protocol import Reader, Writer
from control_plane.store.validation import check_id, is_uuid, resolve_refs
from gateway.entities import Entity, now_s

Endpoint = Callable[[Request], Awaitable[Response]]
DEFAULT_SIZE = 100
MAX_SIZE = 1000


@dataclass(frozen=True, slots=True)
class Parent:
    """A parent segment of a nested path."""

    kind: Kind
    param: str
    """Path parameter naming the parent."""
    field: str
    """The child's foreign key field (`service`)."""

    @property
    def column(self) -> str:
        return f"{self.field}_id"

    def resolve(self, reader: Reader, request: Request) -> Entity:
        found = self.kind.locate(reader, request.path_params[self.param])
        if found is None:
            raise not_found()
        return found

    def owns(self, parent: Entity, child: Entity) -> bool:
        ref = getattr(child, self.field, None)
        return ref is not None and ref.id == parent.id


def _input(body: dict[str, Any]) -> dict[str, Any]:
    """Client input without the auto fields the server sets."""
    return {k: v for k, v in body.items() if k not in AUTO_FIELDS}


def _merge(old: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """PATCH semantics: fields replace, except `config` records, which merge (as Kong)."""
    out = dict(old)
    for key, value in patch.items():
        if key == "config" and isinstance(value, dict) and isinstance(old.get(key), dict):
            out[key] = _deep_merge(old[key], value)
        else:
            out[key] = value
    return out


def _deep_merge(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    out = dict(old)
    for key, value in new.items():
        prior = old.get(key)
        both = isinstance(value, dict) and isinstance(prior, dict)
        out[key] = _deep_merge(prior, value) if both else value  # type: ignore[arg-type]
    return out


def _respond(kind: Kind, entity: Entity, shown: dict[str, Any], status: int) -> JSONResponse:
    return JSONResponse({**kind.render(entity), **shown}, status_code=status)


def _store(writer: Writer, entity: Entity, shown: dict[str, Any], *, insert: bool) -> None:
    try:
        writer.insert(entity) if insert else writer.update(entity)
    except UniqueViolation as exc:
        if "key_hash" in exc.fields:  # name the key the client sent, never the hash
            raise UniqueViolation({"key": shown.get("key")}) from None
        raise


def _paging(request: Request) -> tuple[int, int | None, bool]:
    raw_size = request.query_params.get("size")
    size = DEFAULT_SIZE
    if raw_size is not None:
        if not raw_size.isdigit() or not 1 <= int(raw_size) <= MAX_SIZE:
            raise AdminError(
                400,
                {
                    "code": INVALID_SIZE,
                    "name": "invalid size",
                    "message": f"size must be an integer between 1 and {MAX_SIZE}",
                },
            )
        size = int(raw_size)
    raw_offset = request.query_params.get("offset")
    if raw_offset is None:
        return size, None, raw_size is not None
    try:
        after = int(base64.urlsafe_b64decode(raw_offset.encode()).decode())
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise AdminError(
            400,
            {
                "code": INVALID_OFFSET,
                "name": "invalid offset",
                "message": f"'{raw_offset}' is not a valid offset: bad base64 encoding",
            },
        ) from None
    return size, after, raw_size is not None


def list_endpoint(ctx: AdminContext, kind: Kind, parent: Parent | None = None) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        size, after, sized = _paging(request)

        def run(reader: Reader) -> tuple[list[Entity], int | None]:
            where = None
            if parent is not None:
                where = {parent.column: parent.resolve(reader, request).id}
            return reader.page(kind.model, where, after, size)

        items, cursor = await ctx.read(run)
        body: dict[str, Any] = {"data": [kind.render(e) for e in items], "next": None}
        if cursor is not None:
            token = base64.urlsafe_b64encode(str(cursor).encode()).decode()
            body["offset"] = token
            body["next"] = f"{request.url.path}?offset={token}" + (f"&size={size}" if sized else "")
        return JSONResponse(body)

    return endpoint


def create_endpoint(ctx: AdminContext, kind: Kind, parent: Parent | None = None) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        body = await read_body(request)
        now = now_s()
        available = ctx.plugins()

        def run(writer: Writer) -> tuple[Entity, dict[str, Any]]:
            owner = parent.resolve(writer, request) if parent else None
            data = _input(body)
            check_id(data)
            prepared = kind.prepare(data, now, True)
            data = resolve_refs(writer, prepared.data)
            if parent is not None and owner is not None:
                data[parent.field] = {"id": owner.id}
            entity = kind.build({**data, "created_at": now, "updated_at": now}, available)
            _store(writer, entity, prepared.shown, insert=True)
            return entity, prepared.shown

        entity, shown = await ctx.write(run)
        return _respond(kind, entity, shown, 201)

    return endpoint


def _locate(reader: Reader, kind: Kind, parent: Parent | None, request: Request) -> Entity | None:
    owner = parent.resolve(reader, request) if parent else None
    found = kind.locate(reader, request.path_params["id"])
    return found if found is not None and _owned(parent, owner, found) else None


def _owned(parent: Parent | None, owner: Entity | None, entity: Entity) -> bool:
    return parent is None or owner is None or parent.owns(owner, entity)


def get_endpoint(ctx: AdminContext, kind: Kind, parent: Parent | None = None) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        found = await ctx.read(lambda r: _locate(r, kind, parent, request))
        if found is None:
            raise not_found()
        return _respond(kind, found, {}, 200)

    return endpoint


def patch_endpoint(ctx: AdminContext, kind: Kind, parent: Parent | None = None) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        body = await read_body(request)
        now = now_s()
        available = ctx.plugins()

        def run(writer: Writer) -> tuple[Entity, dict[str, Any]]:
            existing = _locate(writer, kind, parent, request)
            if existing is None:
                raise not_found()
            data = _input(body)
            data.pop("id", None)
            prepared = kind.prepare(data, now, False)
            patch = resolve_refs(writer, prepared.data)
            merged = _merge(existing.model_dump(mode="json"), patch)
            entity = kind.build({**merged, "updated_at": now}, available)
            _store(writer, entity, prepared.shown, insert=False)
            return entity, prepared.shown

        entity, shown = await ctx.write(run)
        return _respond(kind, entity, shown, 200)

    return endpoint


def put_endpoint(ctx: AdminContext, kind: Kind, parent: Parent | None = None) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        body = await read_body(request)
        ident = request.path_params["id"]
        now = now_s()
        available = ctx.plugins()

        def run(writer: Writer) -> tuple[Entity, dict[str, Any]]:
            owner = parent.resolve(writer, request) if parent else None
            existing = kind.locate(writer, ident)
            if existing is not None and not _owned(parent, owner, existing):
                raise not_found()
            if existing is None and kind.endpoint_key is None and not is_uuid(ident):
                raise not_found()
            data = {k: v for k, v in _input(body).items() if k != "id"}
            data.update(kind.identity(ident))
            prepared = kind.prepare(data, now, True)
            data = resolve_refs(writer, prepared.data)
            if parent is not None and owner is not None:
                data[parent.field] = {"id": owner.id}
            if existing is not None:
                data["id"] = existing.id
            created = existing.created_at if existing is not None else now
            entity = kind.build({**data, "created_at": created, "updated_at": now}, available)
            _store(writer, entity, prepared.shown, insert=existing is None)
            return entity, prepared.shown

        entity, shown = await ctx.write(run)
        return _respond(kind, entity, shown, 200)

    return endpoint


def delete_endpoint(ctx: AdminContext, kind: Kind, parent: Parent | None = None) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        def run(writer: Writer) -> None:
            found = _locate(writer, kind, parent, request)
            if found is not None:
                writer.delete(kind.model, found.id)

        await ctx.write(run)
        return Response(status_code=204)

    return endpoint
