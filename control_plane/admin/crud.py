"""Generic Kong entity endpoints: list, create, read, update (PATCH), upsert (PUT), delete.

Each factory returns an endpoint for one kind, optionally nested under a parent
(`/services/{service}/routes`): the parent is resolved from the path (404 if missing), lists
are filtered by it, and writes set the child's foreign key to it (the path wins over the body).
The write steps (`insert_new`, `apply_patch`, `upsert`) are shared with the foreign-entity
endpoints (`/routes/{route}/service`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse, Response

from control_plane.admin.body import read_body
from control_plane.admin.context import AdminContext
from control_plane.admin.errors import not_found
from control_plane.admin.kinds import AUTO_FIELDS, Kind
from control_plane.admin.listing import fetch_page, page_body, parse_page_query
from control_plane.store.errors import UniqueViolation
from control_plane.store.protocol import Reader, Writer
from control_plane.store.validation import check_id, is_uuid, resolve_refs
from gateway.entities import Entity, now_s
from gateway.plugins.base import Plugin as PluginType

Endpoint = Callable[[Request], Awaitable[Response]]
Available = Mapping[str, PluginType[Any]]
Written = tuple[Entity, dict[str, Any]]
"""A stored entity and the fields its response shows once (a generated key)."""


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


def client_input(body: dict[str, Any]) -> dict[str, Any]:
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


def respond(kind: Kind, entity: Entity, shown: dict[str, Any], status: int) -> JSONResponse:
    return JSONResponse({**kind.render(entity), **shown}, status_code=status)


def _store(writer: Writer, entity: Entity, shown: dict[str, Any], *, insert: bool) -> None:
    try:
        writer.insert(entity) if insert else writer.update(entity)
    except UniqueViolation as exc:
        if "key_hash" in exc.fields:  # name the key the client sent, never the hash
            raise UniqueViolation({"key": shown.get("key")}) from None
        raise


def insert_new(
    writer: Writer, kind: Kind, data: dict[str, Any], now: int, available: Available
) -> Written:
    """Validate client input for a new entity and insert it."""
    check_id(data)
    prepared = kind.prepare(data, now, True)
    ready = resolve_refs(writer, prepared.data)
    entity = kind.build({**ready, "created_at": now, "updated_at": now}, available)
    _store(writer, entity, prepared.shown, insert=True)
    return entity, prepared.shown


def apply_patch(
    writer: Writer,
    kind: Kind,
    existing: Entity,
    data: dict[str, Any],
    now: int,
    available: Available,
) -> Written:
    """Merge client input into `existing` and store the result."""
    data = {k: v for k, v in data.items() if k != "id"}
    prepared = kind.prepare(data, now, False)
    patch = resolve_refs(writer, prepared.data)
    merged = _merge(existing.model_dump(mode="json"), patch)
    entity = kind.build({**merged, "updated_at": now}, available)
    _store(writer, entity, prepared.shown, insert=False)
    return entity, prepared.shown


def upsert(
    writer: Writer,
    kind: Kind,
    existing: Entity | None,
    data: dict[str, Any],
    now: int,
    available: Available,
) -> Written:
    """Replace `existing` with client input (defaults for what it omits), or create it."""
    check_id(data)
    prepared = kind.prepare(data, now, True)
    ready = resolve_refs(writer, prepared.data)
    if existing is not None:
        ready["id"] = existing.id
    created = existing.created_at if existing is not None else now
    entity = kind.build({**ready, "created_at": created, "updated_at": now}, available)
    _store(writer, entity, prepared.shown, insert=existing is None)
    return entity, prepared.shown


def list_endpoint(ctx: AdminContext, kind: Kind, parent: Parent | None = None) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        query = parse_page_query(request.query_params)

        def run(reader: Reader) -> tuple[list[Entity], int | None]:
            where = None
            if parent is not None:
                where = {parent.column: parent.resolve(reader, request).id}
            return fetch_page(reader, kind.model, where, query)

        items, cursor = await ctx.read(run)
        rendered = [kind.render(e) for e in items]
        return JSONResponse(page_body(request.url.path, query, rendered, cursor))

    return endpoint


def create_endpoint(ctx: AdminContext, kind: Kind, parent: Parent | None = None) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        body = await read_body(request)
        now = now_s()
        available = ctx.plugins()

        def run(writer: Writer) -> Written:
            data = client_input(body)
            if parent is not None:
                data[parent.field] = {"id": parent.resolve(writer, request).id}
            return insert_new(writer, kind, data, now, available)

        entity, shown = await ctx.write(run)
        return respond(kind, entity, shown, 201)

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
        return respond(kind, found, {}, 200)

    return endpoint


def patch_endpoint(ctx: AdminContext, kind: Kind, parent: Parent | None = None) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        body = await read_body(request)
        now = now_s()
        available = ctx.plugins()

        def run(writer: Writer) -> Written:
            existing = _locate(writer, kind, parent, request)
            if existing is None:
                raise not_found()
            return apply_patch(writer, kind, existing, client_input(body), now, available)

        entity, shown = await ctx.write(run)
        return respond(kind, entity, shown, 200)

    return endpoint


def put_endpoint(ctx: AdminContext, kind: Kind, parent: Parent | None = None) -> Endpoint:
    async def endpoint(request: Request) -> Response:
        body = await read_body(request)
        ident = request.path_params["id"]
        now = now_s()
        available = ctx.plugins()

        def run(writer: Writer) -> Written:
            owner = parent.resolve(writer, request) if parent else None
            existing = kind.locate(writer, ident)
            if existing is not None and not _owned(parent, owner, existing):
                raise not_found()
            if existing is None and kind.endpoint_key is None and not is_uuid(ident):
                raise not_found()
            data = {k: v for k, v in client_input(body).items() if k != "id"}
            data.update(kind.identity(ident))
            if parent is not None and owner is not None:
                data[parent.field] = {"id": owner.id}
            return upsert(writer, kind, existing, data, now, available)

        entity, shown = await ctx.write(run)
        return respond(kind, entity, shown, 200)

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
