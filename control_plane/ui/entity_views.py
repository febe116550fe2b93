"""Gateway Services, Routes and Consumers: list, create, edit and delete.

Writes go through the Admin API's own steps (`crud.insert_new`, `crud.apply_patch`, the
store's cascading delete) in `AdminContext.write`, so validation, uniqueness, audit entries
and the config push are exactly those of the Admin API. Refused input redraws the form with
each message beside its field.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from control_plane.admin import crud
from control_plane.admin.errors import store_error_body
from control_plane.admin.kinds import SERVICES, Kind
from control_plane.admin.listing import PageQuery, decode_offset, encode_offset, fetch_page
from control_plane.store.errors import StoreError
from control_plane.store.protocol import Reader, Writer
from control_plane.store.users import Session
from control_plane.ui.context import Forbidden, Form, Ui
from control_plane.ui.entity_specs import EntitySpec
from control_plane.ui.fields import FieldError, field_messages, form_values, read_fields
from gateway.entities import Entity, now_s

PAGE_SIZE = 100


class NotFoundPage(Exception):
    """The entity a path names does not exist (a 404 page)."""


def offset_of(request: Request) -> int | None:
    raw = request.query_params.get("offset")
    if raw is None:
        return None
    try:
        return decode_offset(raw)
    except Exception:
        raise Forbidden("That page link is not valid.") from None


async def list_rows(
    ui: Ui, kind: Kind, after: int | None = None, size: int = PAGE_SIZE
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of rendered entities and the offset of the next page (None: last page)."""

    def run(reader: Reader) -> tuple[list[Entity], int | None]:
        return fetch_page(reader, kind.model, None, PageQuery(size=size, after=after))

    items, cursor = await ui.admin.read(run)
    rows = [kind.render(e) for e in items]
    return rows, None if cursor is None else encode_offset(cursor)


async def service_choices(ui: Ui) -> list[tuple[str, str]]:
    """(id, name) of services for a route's select (the first 1000)."""
    rows, _ = await list_rows(ui, SERVICES, size=1000)
    return [(r["id"], r.get("name") or r["id"]) for r in rows]


async def locate(ui: Ui, spec: EntitySpec, ident: str) -> dict[str, Any]:
    found = await ui.admin.read(lambda r: spec.kind.locate(r, ident))
    if found is None:
        raise NotFoundPage(f"No {spec.singular.lower()} '{ident}'.")
    return spec.kind.render(found)


def add_entity_routes(app: FastAPI, ui: Ui, spec: EntitySpec, *, detail_extra: Any = None) -> None:
    """Mount the list, create, edit and delete views of one entity page. `detail_extra`
    (async (request, session, row) -> dict) adds context to the edit page."""

    async def listing(
        request: Request,
        session: Session,
        status: int = 200,
        values: dict[str, Any] | None = None,
        errors: dict[str, str] | None = None,
        error: str | None = None,
    ) -> Response:
        rows, next_offset = await list_rows(ui, spec.kind, offset_of(request))
        names = dict(await service_choices(ui)) if spec.path == "/routes" else {}
        return ui.page(
            request,
            session,
            "entity_list.html",
            status,
            spec=spec,
            rows=rows,
            next_offset=next_offset,
            services=list(names.items()),
            service_names=names,
            values=values or {},
            errors=errors or {},
            error=error,
            created=request.query_params.get("created"),
            deleted=request.query_params.get("deleted"),
            open_form=status != 200,
        )

    @app.get(spec.path)
    async def list_view(request: Request) -> Response:
        return await listing(request, await ui.session(request))

    @app.post(spec.path)
    async def create(request: Request) -> Response:
        session = await ui.session(request)
        form = await ui.form(request, session, "POST", spec.path)
        try:
            data = read_fields(spec.fields, form, creating=True)
            now, available = now_s(), ui.admin.plugins()
            with ui.acting(session):
                entity, _ = await ui.admin.write(
                    lambda w: crud.insert_new(w, spec.kind, data, now, available)
                )
        except (StoreError, FieldError) as exc:
            errors, summary = _errors(exc)
            values = form_values(spec.fields, form)
            return await listing(request, session, _status(exc), values, errors, summary)
        label = spec.label(spec.kind.render(entity))
        return RedirectResponse(f"{spec.path}?created={quote(label)}", status_code=303)

    async def detail(
        request: Request,
        session: Session,
        row: dict[str, Any],
        status: int = 200,
        *,
        values: dict[str, Any] | None = None,
        errors: dict[str, str] | None = None,
        error: str | None = None,
        **extra: Any,
    ) -> Response:
        more = await detail_extra(request, session, row) if detail_extra else {}
        return ui.page(
            request,
            session,
            "entity_edit.html",
            status,
            spec=spec,
            row=row,
            values=values if values is not None else spec.shown(row),
            services=await service_choices(ui) if spec.path == "/routes" else [],
            errors=errors or {},
            error=error,
            saved=request.query_params.get("saved") == "1",
            **more,
            **extra,
        )

    @app.get(spec.path + "/{ident}")
    async def edit_view(request: Request, ident: str) -> Response:
        session = await ui.session(request)
        return await detail(request, session, await locate(ui, spec, ident))

    @app.post(spec.path + "/{ident}")
    async def update(request: Request, ident: str) -> Response:
        session = await ui.session(request)
        form = await ui.form(request, session, "PATCH", f"{spec.path}/{ident}")
        row = await locate(ui, spec, ident)
        try:
            data = read_fields(spec.fields, form, creating=False)
            now, available = now_s(), ui.admin.plugins()

            def run(writer: Writer) -> crud.Written:
                existing = spec.kind.locate(writer, row["id"])
                if existing is None:
                    raise NotFoundPage(f"No {spec.singular.lower()} '{ident}'.")
                return crud.apply_patch(writer, spec.kind, existing, data, now, available)

            with ui.acting(session):
                await ui.admin.write(run)
        except (StoreError, FieldError) as exc:
            errors, summary = _errors(exc)
            values = form_values(spec.fields, form)
            return await detail(
                request, session, row, _status(exc), values=values, errors=errors, error=summary
            )
        return RedirectResponse(f"{spec.path}/{row['id']}?saved=1", status_code=303)

    @app.post(spec.path + "/{ident}/delete")
    async def remove(request: Request, ident: str) -> Response:
        session = await ui.session(request)
        await ui.form(request, session, "DELETE", f"{spec.path}/{ident}")
        row = await locate(ui, spec, ident)
        try:
            with ui.acting(session):
                await ui.admin.write(lambda w: w.delete(spec.kind.model, row["id"]))
        except StoreError as exc:
            _, summary = field_messages(store_error_body(exc)[1])
            return await listing(request, session, _status(exc), error=summary)
        label = quote(spec.label(row))
        return RedirectResponse(f"{spec.path}?deleted={label}", status_code=303)


def _errors(exc: StoreError | FieldError) -> tuple[dict[str, str], str]:
    if isinstance(exc, FieldError):
        return {exc.field: str(exc)}, "Check the highlighted fields."
    return field_messages(store_error_body(exc)[1])


def _status(exc: StoreError | FieldError) -> int:
    return 400 if isinstance(exc, FieldError) else store_error_body(exc)[0]


__all__ = ["Form", "NotFoundPage", "add_entity_routes", "list_rows", "locate"]
