"""Users and admin tokens (admin role only, as the Admin API's `/admin-tokens`).

Users: create (username, password, role), change role, reset password (ends their
sessions), delete; an admin cannot delete or demote themself, so a UI always keeps an admin.
Admin tokens: the Admin API's `TokenRequest` checks and the store's `create_admin_token` /
`revoke_admin_token`, the plaintext shown once.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from control_plane.admin.errors import store_error_body
from control_plane.admin.tokens import TokenRequest, render_token
from control_plane.admin_tokens import hash_token, new_token
from control_plane.store.errors import StoreError
from control_plane.store.users import Session
from control_plane.ui.context import Forbidden, Ui
from control_plane.ui.fields import field_messages
from gateway.entities import now_s

ADMIN_PATH = "/admin-tokens"
"""Managing users needs what managing admin tokens needs: the admin role."""


def add_user_routes(app: FastAPI, ui: Ui) -> None:
    """Mount `/users` (+ create, role, password, delete) and `/tokens` (+ revoke)."""

    async def page(
        request: Request,
        session: Session,
        status: int = 200,
        **extra: Any,
    ) -> Response:
        ui.allow(session, "GET", ADMIN_PATH)
        users = await ui.admin.call(ui.users.list)
        tokens = await ui.admin.call(ui.admin.store.list_admin_tokens)
        context: dict[str, Any] = {
            "users": users,
            "tokens": [render_token(t) for t in tokens],
            "user_errors": {},
            "user_error": None,
            "user_values": {},
            "minting_errors": {},
            "minting_error": None,
            "minting_values": {},
            "new_token": None,
            "message": request.query_params.get("done"),
            "now": now_s(),
        }
        context.update(extra)
        return ui.page(request, session, "users.html", status, **context)

    @app.get("/users")
    async def users(request: Request) -> Response:
        return await page(request, await ui.session(request))

    @app.post("/users")
    async def create_user(request: Request) -> Response:
        session = await ui.session(request)
        form = await ui.form(request, session, "POST", ADMIN_PATH)
        username = form.get("username").strip()
        role = form.get("role")
        try:
            with ui.acting(session) as caller:
                await ui.admin.call(
                    ui.users.create,
                    username,
                    form.get("password"),
                    role,
                    actor=caller.name,
                    request_id=caller.request_id,
                )
        except StoreError as exc:
            status, body = store_error_body(exc)
            errors, summary = field_messages(body)
            values = {"username": username, "role": role}
            return await page(
                request,
                session,
                status,
                user_errors=errors,
                user_error=summary,
                user_values=values,
            )
        return RedirectResponse(f"/users?done=Created+user+{username}", status_code=303)

    async def _change(request: Request, ident: str, *, delete: bool = False) -> Response:
        session = await ui.session(request)
        form = await ui.form(request, session, "POST", ADMIN_PATH)
        target = await ui.admin.call(ui.users.get, ident)
        if target is None:
            return await page(request, session, 404, user_error="No such user.")
        role = form.get("role") or None
        if target.id == session.user.id and (delete or (role and role != "admin")):
            raise Forbidden("You cannot delete yourself or give up your own admin role.")
        try:
            with ui.acting(session) as caller:
                who = {"actor": caller.name, "request_id": caller.request_id}
                if delete:
                    await ui.admin.call(ui.users.delete, target.id, **who)
                else:
                    password = form.get("password") or None
                    await ui.admin.call(
                        ui.users.update, target.id, role=role, password=password, **who
                    )
        except StoreError as exc:
            status, body = store_error_body(exc)
            _, summary = field_messages(body)
            return await page(request, session, status, user_error=f"{target.username}: {summary}")
        verb = "Deleted" if delete else "Updated"
        return RedirectResponse(f"/users?done={verb}+user+{target.username}", status_code=303)

    @app.post("/users/{ident}")
    async def update_user(request: Request, ident: str) -> Response:
        return await _change(request, ident)

    @app.post("/users/{ident}/delete")
    async def delete_user(request: Request, ident: str) -> Response:
        return await _change(request, ident, delete=True)

    @app.post("/tokens")
    async def create_token(request: Request) -> Response:
        session = await ui.session(request)
        form = await ui.form(request, session, "POST", ADMIN_PATH)
        values = {"name": form.get("name").strip(), "role": form.get("role")}
        ttl = form.get("ttl").strip()
        body: dict[str, Any] = dict(values)
        if ttl:
            body["ttl"] = ttl
        try:
            wanted = TokenRequest.model_validate(body)
        except ValidationError as exc:
            errors = {".".join(str(p) for p in e["loc"]): e["msg"] for e in exc.errors()}
            return await page(
                request,
                session,
                400,
                minting_errors=errors,
                minting_error="Check the fields.",
                minting_values=values,
            )
        plaintext = new_token()
        expires_at = None if wanted.ttl is None else now_s() + wanted.ttl
        try:
            with ui.acting(session) as caller:
                created = await ui.admin.call(
                    ui.admin.store.create_admin_token,
                    wanted.name,
                    wanted.role,
                    hash_token(plaintext),
                    expires_at,
                    actor=caller.name,
                    request_id=caller.request_id,
                )
        except StoreError as exc:
            status, err = store_error_body(exc)
            errors, summary = field_messages(err)
            return await page(
                request,
                session,
                status,
                minting_errors=errors,
                minting_error=summary,
                minting_values=values,
            )
        return await page(
            request, session, 201, new_token={"name": created.name, "token": plaintext}
        )

    @app.post("/tokens/{ident}/revoke")
    async def revoke_token(request: Request, ident: str) -> Response:
        session = await ui.session(request)
        await ui.form(request, session, "DELETE", f"{ADMIN_PATH}/{ident}")
        with ui.acting(session) as caller:
            found = await ui.admin.call(
                ui.admin.store.revoke_admin_token,
                ident,
                actor=caller.name,
                request_id=caller.request_id,
            )
        if not found:
            return await page(request, session, 404, minting_error="No such token.")
        return RedirectResponse("/users?done=Revoked+the+token", status_code=303)
