"""Log in and out.

The login form is protected against CSRF by a double-submit token (a cookie and a field that
must match); after login, forms carry the session's own token. The session cookie is
HttpOnly, SameSite=Lax, Path=/, Secure on HTTPS; its value is random and only its hash is
stored. Failed logins are throttled per username and per client address.
"""

from __future__ import annotations

import hmac
import math
import secrets
from urllib.parse import parse_qsl

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from control_plane.ui.context import (
    COOKIE,
    CSRF_FIELD,
    MAX_FORM_BYTES,
    Forbidden,
    Form,
    LoginRequired,
    Ui,
)

LOGIN_CSRF_COOKIE = "lockgate_login_csrf"


def safe_next(target: str) -> str:
    """Where to go after login: a local path only (never `//host` or a URL)."""
    if target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def secure(ui: Ui, request: Request) -> bool:
    if ui.config.secure_cookies is not None:
        return ui.config.secure_cookies
    return request.url.scheme == "https"


def add_auth_routes(app: FastAPI, ui: Ui) -> None:
    """Mount `GET/POST /login` and `POST /logout`."""

    def login_page(
        request: Request, status: int = 200, *, error: str | None = None, username: str = ""
    ) -> Response:
        token = request.cookies.get(LOGIN_CSRF_COOKIE) or secrets.token_urlsafe(32)
        response = ui.pages.render(
            "login.html",
            status,
            login_csrf=token,
            error=error,
            username=username,
            next=safe_next(request.query_params.get("next", "/")),
            expired=request.query_params.get("expired") == "1",
        )
        response.set_cookie(
            LOGIN_CSRF_COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=secure(ui, request),
            path="/login",
        )
        return response

    @app.get("/login")
    async def login_form(request: Request) -> Response:
        try:
            await ui.session(request)
        except LoginRequired:
            return login_page(request)
        return RedirectResponse("/", status_code=303)

    @app.post("/login")
    async def login(request: Request) -> Response:
        raw = await request.body()
        if len(raw) > MAX_FORM_BYTES:
            raise Forbidden("The form is too large.")
        form = Form(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        cookie = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        sent = form.get(CSRF_FIELD)
        if not cookie or not hmac.compare_digest(sent.encode(), cookie.encode()):
            raise Forbidden("The login form expired: reload the page and try again.")
        username = form.get("username").strip()
        password = form.get("password")
        client = request.client.host if request.client else "unknown"
        wait = ui.throttle.retry_after(username, client)
        if wait is not None:
            message = f"Too many failed logins. Try again in {math.ceil(wait)} seconds."
            response = login_page(request, 429, error=message, username=username)
            response.headers["Retry-After"] = str(math.ceil(wait))
            return response
        user = await run_in_threadpool(ui.users.authenticate, username, password)
        if user is None:
            ui.throttle.failed(username, client)
            return login_page(
                request, 401, error="Invalid username or password.", username=username
            )
        ui.throttle.succeeded(username)
        token, _ = await run_in_threadpool(ui.users.start_session, user, ui.config.session_ttl_s)
        target = safe_next(form.get("next", "/"))
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(
            COOKIE,
            token,
            max_age=ui.config.session_ttl_s,
            httponly=True,
            samesite="lax",
            secure=secure(ui, request),
            path="/",
        )
        response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
        return response

    @app.post("/logout")
    async def logout(request: Request) -> Response:
        session = await ui.session(request)
        await ui.form(request, session, "GET", "/")  # any role may log out; CSRF still applies
        token = request.cookies.get(COOKIE, "")
        await run_in_threadpool(ui.users.end_session, token)
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response
