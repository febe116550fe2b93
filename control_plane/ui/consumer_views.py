"""A consumer's key-auth credentials: list, generate (the key shown once) and delete.

As the Admin API's `POST /consumers/{consumer}/key-auth`: a key left blank is generated, only
its SHA-256 is stored, and the plaintext appears in this one response and never again.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from control_plane.admin import crud
from control_plane.admin.errors import store_error_body
from control_plane.admin.kinds import CREDENTIALS
from control_plane.admin.listing import PageQuery, fetch_page
from control_plane.store.errors import StoreError
from control_plane.store.protocol import Reader
from control_plane.store.users import Session
from control_plane.ui.context import Ui
from control_plane.ui.entity_specs import CONSUMER_PAGE
from control_plane.ui.entity_views import NotFoundPage, add_entity_routes, locate
from control_plane.ui.fields import field_messages
from gateway.entities import Entity, now_s


async def credentials_of(ui: Ui, consumer_id: str) -> list[dict[str, Any]]:
    def run(reader: Reader) -> tuple[list[Entity], int | None]:
        where = {"consumer_id": consumer_id}
        return fetch_page(reader, CREDENTIALS.model, where, PageQuery(size=1000, after=None))

    items, _ = await ui.admin.read(run)
    return [CREDENTIALS.render(e) for e in items]


def add_consumer_routes(app: FastAPI, ui: Ui) -> None:
    """Mount the consumer pages with their credentials section."""

    async def extra(request: Request, session: Session, row: dict[str, Any]) -> dict[str, Any]:
        return {"credentials": await credentials_of(ui, row["id"])}

    add_entity_routes(app, ui, CONSUMER_PAGE, detail_extra=extra)

    @app.post("/consumers/{ident}/key-auth")
    async def create_key(request: Request, ident: str) -> Response:
        session = await ui.session(request)
        form = await ui.form(request, session, "POST", f"/consumers/{ident}/key-auth")
        row = await locate(ui, CONSUMER_PAGE, ident)
        data: dict[str, Any] = {"consumer": {"id": row["id"]}}
        key = form.get("key").strip()
        if key:
            data["key"] = key
        ttl = form.get("ttl").strip()
        new_key = error = None
        status = 201
        try:
            if ttl:
                data["ttl"] = int(ttl)
            now, available = now_s(), ui.admin.plugins()
            with ui.acting(session):
                _, shown = await ui.admin.write(
                    lambda w: crud.insert_new(w, CREDENTIALS, data, now, available)
                )
            new_key = shown.get("key")
        except ValueError:
            status, error = 400, "TTL must be a whole number of seconds."
        except StoreError as exc:
            status, body = store_error_body(exc)
            errors, error = field_messages(body)
            if "key" in errors:
                error = f"That key is already in use ({errors['key']})."
        return ui.page(
            request,
            session,
            "entity_edit.html",
            status,
            spec=CONSUMER_PAGE,
            row=row,
            values=CONSUMER_PAGE.shown(row),
            services=[],
            errors={},
            error=None,
            key_error=error,
            saved=False,
            new_key=new_key,
            credentials=await credentials_of(ui, row["id"]),
        )

    @app.post("/consumers/{ident}/key-auth/{credential}/delete")
    async def delete_key(request: Request, ident: str, credential: str) -> Response:
        session = await ui.session(request)
        await ui.form(request, session, "DELETE", f"/consumers/{ident}/key-auth/{credential}")
        row = await locate(ui, CONSUMER_PAGE, ident)
        owned = {c["id"] for c in await credentials_of(ui, row["id"])}
        if credential not in owned:
            raise NotFoundPage("No such credential.")
        with ui.acting(session):
            await ui.admin.write(lambda w: w.delete(CREDENTIALS.model, credential))
        return RedirectResponse(f"/consumers/{row['id']}", status_code=303)
