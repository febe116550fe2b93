"""Plugins: list every instance with its scope, add one from a form drawn from the plugin's
schema, edit (the form replaces the whole config, as the Admin API's PUT), delete.

Scope as Kong: global, or one service, route or consumer. Writes use the Admin API's
`crud.insert_new` / `crud.upsert`, so config is validated (and Lua compiled) exactly as there.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from control_plane.admin import crud
from control_plane.admin.errors import store_error_body
from control_plane.admin.kinds import PLUGINS
from control_plane.store.errors import StoreError
from control_plane.store.protocol import Writer
from control_plane.store.users import Session
from control_plane.ui.context import Form, Ui
from control_plane.ui.entity_specs import CONSUMER_PAGE, ROUTE_PAGE, SERVICE_PAGE
from control_plane.ui.entity_views import NotFoundPage, list_rows, offset_of
from control_plane.ui.plugin_forms import (
    PluginField,
    form_shown,
    plugin_fields,
    plugin_schema,
    read_config,
    shown,
)
from control_plane.ui.plugin_secrets import HINT, masked, masked_typed, restored, secret_fields
from gateway.entities import now_s

SCOPES = ("service", "route", "consumer")


async def scope_choices(ui: Ui) -> dict[str, list[tuple[str, str]]]:
    """For each scope, (id, label) of the entities a plugin can attach to."""
    out: dict[str, list[tuple[str, str]]] = {}
    for scope, spec in zip(SCOPES, (SERVICE_PAGE, ROUTE_PAGE, CONSUMER_PAGE), strict=True):
        rows, _ = await list_rows(ui, spec.kind, size=1000)
        out[scope] = [(r["id"], spec.label(r)) for r in rows]
    return out


def scope_of(row: dict[str, Any], names: dict[str, dict[str, str]]) -> str:
    for scope in SCOPES:
        ref = row.get(scope)
        if ref:
            return f"{scope.capitalize()}: {names[scope].get(ref['id'], ref['id'])}"
    return "Global"


def _schema(ui: Ui, name: str) -> dict[str, Any]:
    plugin = ui.admin.plugins().get(name)
    if plugin is None:
        raise NotFoundPage(f"No plugin named '{name}'.")
    return plugin_schema(plugin)


def _input(
    form: Form, name: str, fields: list[PluginField]
) -> tuple[dict[str, Any], dict[str, str]]:
    config, errors = read_config(fields, form)
    data: dict[str, Any] = {"name": name, "config": config, "enabled": form.has("enabled")}
    instance = form.get("instance_name").strip()
    data["instance_name"] = instance or None
    for scope in SCOPES:
        chosen = form.get(scope).strip()
        data[scope] = {"id": chosen} if chosen else None
    return data, errors


def add_plugin_routes(app: FastAPI, ui: Ui) -> None:
    """Mount `/plugins`, `/plugins/new/{name}` and `/plugins/{id}` (+ `/delete`)."""

    async def editor(
        request: Request,
        session: Session,
        name: str,
        row: dict[str, Any] | None,
        status: int = 200,
        *,
        form: Form | None = None,
        errors: dict[str, str] | None = None,
        config_errors: dict[str, str] | None = None,
        error: str | None = None,
    ) -> Response:
        schema = _schema(ui, name)
        fields = plugin_fields(name, schema)
        # Secrets are never drawn: stored ones as placeholders, typed ones as "type it again".
        stored = (row or {}).get("config") or {}
        if form is not None:
            values = masked_typed(fields, form_shown(fields, form), schema)
            meta = {
                "instance_name": form.get("instance_name"),
                "enabled": form.has("enabled"),
                **{scope: form.get(scope) for scope in SCOPES},
            }
        else:
            config = masked(stored, schema)
            values = {f.name: shown(f, config) for f in fields}
            meta = {
                "instance_name": (row or {}).get("instance_name") or "",
                "enabled": True if row is None else bool(row.get("enabled")),
                **{s: ((row or {}).get(s) or {}).get("id", "") for s in SCOPES},
            }
        return ui.page(
            request,
            session,
            "plugin_form.html",
            status,
            name=name,
            row=row,
            fields=fields,
            values=values,
            secrets=secret_fields(stored, schema),
            secret_hint=HINT,
            meta=meta,
            choices=await scope_choices(ui),
            errors=errors or {},
            config_errors=config_errors or {},
            error=error,
            saved=request.query_params.get("saved") == "1",
        )

    @app.get("/plugins")
    async def listing(request: Request) -> Response:
        session = await ui.session(request)
        rows, next_offset = await list_rows(ui, PLUGINS, offset_of(request))
        choices = await scope_choices(ui)
        names = {scope: dict(items) for scope, items in choices.items()}
        return ui.page(
            request,
            session,
            "plugins.html",
            rows=[{**r, "scope": scope_of(r, names)} for r in rows],
            next_offset=next_offset,
            available=sorted(ui.admin.plugins()),
            created=request.query_params.get("created"),
            deleted=request.query_params.get("deleted"),
        )

    @app.get("/plugins/new/{name}")
    async def new(request: Request, name: str) -> Response:
        return await editor(request, await ui.session(request), name, None)

    async def save(
        request: Request, name: str, row: dict[str, Any] | None, method: str, path: str
    ) -> Response:
        session = await ui.session(request)
        form = await ui.form(request, session, method, path)
        schema = _schema(ui, name)
        fields = plugin_fields(name, schema)
        data, config_errors = _input(form, name, fields)
        if not config_errors:
            stored = (row or {}).get("config") or {}
            data["config"], config_errors = restored(data["config"], stored, schema)
        if config_errors:
            return await editor(
                request,
                session,
                name,
                row,
                400,
                form=form,
                config_errors=config_errors,
                error="Check the highlighted fields.",
            )
        now, available = now_s(), ui.admin.plugins()

        def run(writer: Writer) -> crud.Written:
            if row is None:
                return crud.insert_new(writer, PLUGINS, data, now, available)
            existing = PLUGINS.locate(writer, row["id"])
            if existing is None:
                raise NotFoundPage("The plugin was deleted meanwhile.")
            return crud.upsert(writer, PLUGINS, existing, {**data, "id": row["id"]}, now, available)

        try:
            with ui.acting(session):
                entity, _ = await ui.admin.write(run)
        except StoreError as exc:
            status, body = store_error_body(exc)
            fields_body = body.get("fields") or {}
            nested = fields_body.get("config") if isinstance(fields_body, dict) else None
            config_msgs = (
                {k: _text(v) for k, v in (nested or {}).items()} if isinstance(nested, dict) else {}
            )
            top = (
                {k: _text(v) for k, v in fields_body.items() if k != "config"}
                if isinstance(fields_body, dict)
                else {}
            )
            return await editor(
                request,
                session,
                name,
                row,
                status,
                form=form,
                errors=top,
                config_errors=config_msgs,
                error=str(body.get("message")),
            )
        if row is None:
            return RedirectResponse(f"/plugins?created={quote(name)}", status_code=303)
        return RedirectResponse(f"/plugins/{entity.id}?saved=1", status_code=303)

    @app.post("/plugins/new/{name}")
    async def create(request: Request, name: str) -> Response:
        return await save(request, name, None, "POST", "/plugins")

    async def locate(ident: str) -> dict[str, Any]:
        found = await ui.admin.read(lambda r: PLUGINS.locate(r, ident))
        if found is None:
            raise NotFoundPage(f"No plugin '{ident}'.")
        return PLUGINS.render(found)

    @app.get("/plugins/{ident}")
    async def edit(request: Request, ident: str) -> Response:
        session = await ui.session(request)
        row = await locate(ident)
        return await editor(request, session, row["name"], row)

    @app.post("/plugins/{ident}")
    async def update(request: Request, ident: str) -> Response:
        await ui.session(request)  # before the lookup: an anonymous caller must not probe ids
        row = await locate(ident)
        return await save(request, row["name"], row, "PUT", f"/plugins/{ident}")

    @app.post("/plugins/{ident}/delete")
    async def delete(request: Request, ident: str) -> Response:
        session = await ui.session(request)
        await ui.form(request, session, "DELETE", f"/plugins/{ident}")
        row = await locate(ident)
        with ui.acting(session):
            await ui.admin.write(lambda w: w.delete(PLUGINS.model, row["id"]))
        return RedirectResponse(f"/plugins?deleted={quote(row['name'])}", status_code=303)


def _text(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k}: {_text(v)}" for k, v in value.items())
    if isinstance(value, list):
        return "; ".join(_text(v) for v in value)
    return str(value)
