"""`create_ui_app`: the web UI (port 8002) as one FastAPI app.

Server-rendered Jinja2 pages with htmx and Chart.js from `web/static` (vendored; no build
step). Every page needs a login; every form a CSRF token; every write the role the Admin API
would demand for the same change, and it runs through the Admin API's own service functions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from control_plane.admin.context import AdminContext
from control_plane.admin.errors import DATABASE_UNAVAILABLE, AdminError
from control_plane.nodes import NodeRegistry
from control_plane.publisher import Publisher
from control_plane.store.events import ChangeEvent
from control_plane.store.protocol import Store
from control_plane.store.users import UserStore
from control_plane.ui.audit_views import add_audit_routes
from control_plane.ui.auth_views import add_auth_routes
from control_plane.ui.config import UiConfig
from control_plane.ui.consumer_views import add_consumer_routes
from control_plane.ui.context import Forbidden, LoginRequired, Ui
from control_plane.ui.entity_specs import ROUTE_PAGE, SERVICE_PAGE
from control_plane.ui.entity_views import NotFoundPage, add_entity_routes
from control_plane.ui.extensions import AnalyticsSource, LocalNodes
from control_plane.ui.node_views import add_node_routes
from control_plane.ui.overview_views import add_overview_routes
from control_plane.ui.plugin_views import add_plugin_routes
from control_plane.ui.render import Pages
from control_plane.ui.throttle import LoginThrottle
from control_plane.ui.user_views import add_user_routes
from gateway.plugins import registry
from gateway.plugins.base import Plugin

# Scripts come only from /static: an injected <script> cannot run. Inline styles are allowed
# because Chart.js sizes its canvases with them (they cannot run code).
_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
_HEADERS = [
    (b"content-security-policy", _CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
]

log = logging.getLogger("lockgate.cp.ui")


class SecurityHeaders:
    """Adds the CSP and friends to every response; pages are never cached (they show
    secrets once, and a shared browser's back button must not show them again)."""

    def __init__(self, app: ASGIApp) -> None:
        self._app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = list(_HEADERS)
                if not static:
                    extra.append((b"cache-control", b"no-store"))
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self._app(scope, receive, send_with_headers)


def create_ui_app(
    store: Store,
    users: UserStore,
    nodes: NodeRegistry,
    publisher: Publisher,
    on_change: Callable[[ChangeEvent], None],
    *,
    config: UiConfig | None = None,
    plugins: Mapping[str, Plugin[Any]] | None = None,
    analytics: AnalyticsSource | None = None,
    local_nodes: LocalNodes | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> FastAPI:
    """The web UI over the same store, change notification (`on_change`, as given to
    `create_admin_app`) and plugin registry as the Admin API.

    `users` holds logins (control_plane.store.users, on the store's engine). `analytics` and
    `local_nodes` adapt the services behind `/analytics/requests` and
    `/clustering/local-nodes` (None: the UI says analytics is unavailable / hides scaling).
    `clock` drives login throttling (tests).
    """
    config = config or UiConfig()
    app = FastAPI(title="Lockgate UI", docs_url=None, redoc_url=None, openapi_url=None)
    admin = AdminContext(store, on_change, registry if plugins is None else lambda: plugins)
    ui = Ui(
        admin=admin,
        users=users,
        nodes=nodes,
        publisher=publisher,
        config=config,
        pages=Pages(config.web_dir / "templates"),
        analytics=analytics,
        local_nodes=local_nodes,
        throttle=LoginThrottle(clock),
    )
    app.mount("/static", StaticFiles(directory=config.web_dir / "static"), name="static")
    _install_errors(app, ui)
    add_auth_routes(app, ui)
    add_overview_routes(app, ui)
    add_entity_routes(app, ui, SERVICE_PAGE)
    add_entity_routes(app, ui, ROUTE_PAGE)
    add_consumer_routes(app, ui)
    add_plugin_routes(app, ui)
    add_node_routes(app, ui)
    add_audit_routes(app, ui)
    add_user_routes(app, ui)
    app.add_middleware(SecurityHeaders)
    return app


def _install_errors(app: FastAPI, ui: Ui) -> None:
    def problem(request: Request, status: int, title: str, message: str) -> HTMLResponse:
        return ui.pages.render(
            "error.html", status, title=title, message=message, path=request.url.path
        )

    @app.exception_handler(LoginRequired)
    async def _login(request: Request, exc: LoginRequired) -> Response:
        target = request.url.path
        if request.url.query:
            target += "?" + request.url.query
        if request.method != "GET":  # after login, land on a page, never replay a form post
            target = "/"
        location = f"/login?next={quote(target, safe='')}" + ("&expired=1" if exc.expired else "")
        if request.headers.get("HX-Request"):
            return Response(status_code=200, headers={"HX-Redirect": location})
        response = RedirectResponse(location, status_code=303)
        if exc.expired:
            response.delete_cookie("lockgate_session", path="/")
        return response

    @app.exception_handler(Forbidden)
    async def _forbidden(request: Request, exc: Forbidden) -> Response:
        return problem(request, 403, "Forbidden", str(exc))

    @app.exception_handler(NotFoundPage)
    async def _missing(request: Request, exc: NotFoundPage) -> Response:
        return problem(request, 404, "Not found", str(exc))

    @app.exception_handler(AdminError)
    async def _admin(request: Request, exc: AdminError) -> Response:
        return problem(request, exc.status, "Error", str(exc.body.get("message", "")))

    @app.exception_handler(OperationalError)
    @app.exception_handler(InterfaceError)
    async def _database(request: Request, exc: Exception) -> Response:
        log.warning("database unavailable: %s", str(exc).splitlines()[0])
        response = problem(request, 503, "Database unavailable", DATABASE_UNAVAILABLE)
        response.headers["Retry-After"] = "1"
        return response

    @app.exception_handler(HTTPException)
    async def _http(request: Request, exc: HTTPException) -> Response:
        titles = {404: "Not found", 405: "Method not allowed"}
        title = titles.get(exc.status_code, "Error")
        return problem(request, exc.status_code, title, str(exc.detail))
