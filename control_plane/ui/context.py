"""What every UI view shares: the Admin API's service context, users and sessions, and the
checks each request passes (login, CSRF token, role).

Roles are the Admin API's: a view that writes names the Admin API call it stands for (method
and path) and `control_plane.admin.roles.denial` decides, so the UI never lets a role do what
its admin token could not. Writes run with a `Caller` bound (`ui:<username>`), so the audit log
attributes them exactly as it does Admin API calls.
"""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request
from fastapi.responses import HTMLResponse
from starlette.concurrency import run_in_threadpool

from control_plane.admin.caller import Caller, bind_caller, unbind_caller
from control_plane.admin.context import AdminContext
from control_plane.admin.roles import denial
from control_plane.nodes import NodeRegistry
from control_plane.publisher import Publisher
from control_plane.store.users import Session, UserStore
from control_plane.ui.config import UiConfig
from control_plane.ui.extensions import AnalyticsSource, LocalNodes
from control_plane.ui.render import Pages
from control_plane.ui.throttle import LoginThrottle

COOKIE = "lockgate_session"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"
MAX_FORM_BYTES = 1 << 20


class LoginRequired(Exception):
    """No live session: the browser is sent to the login page."""

    def __init__(self, expired: bool = False) -> None:
        super().__init__("login required")
        self.expired = expired


class Forbidden(Exception):
    """A 403 page with `message`."""


@dataclass(frozen=True, slots=True)
class NavItem:
    href: str
    label: str
    admin_path: str
    """The Admin API read this page stands for (decides who sees it)."""


NAV = (
    NavItem("/", "Overview", "/services"),
    NavItem("/services", "Gateway Services", "/services"),
    NavItem("/routes", "Routes", "/routes"),
    NavItem("/consumers", "Consumers", "/consumers"),
    NavItem("/plugins", "Plugins", "/plugins"),
    NavItem("/nodes", "Data Plane Nodes", "/clustering/data-planes"),
    NavItem("/analytics", "Analytics", "/analytics/requests"),
    NavItem("/audit", "Audit log", "/audit-logs"),
    NavItem("/users", "Users and tokens", "/admin-tokens"),
)


class Form:
    """A submitted url-encoded form: every value of every field, as strings."""

    def __init__(self, pairs: list[tuple[str, str]]) -> None:
        self._values: dict[str, list[str]] = {}
        for key, value in pairs:
            self._values.setdefault(key, []).append(value)

    def get(self, name: str, default: str = "") -> str:
        values = self._values.get(name)
        return values[0] if values else default

    def getlist(self, name: str) -> list[str]:
        return list(self._values.get(name, ()))

    def has(self, name: str) -> bool:
        return name in self._values

    def names(self) -> list[str]:
        return list(self._values)


@dataclass(slots=True)
class Ui:
    admin: AdminContext
    users: UserStore
    nodes: NodeRegistry
    publisher: Publisher
    config: UiConfig
    pages: Pages
    analytics: AnalyticsSource | None = None
    local_nodes: LocalNodes | None = None
    clock: Callable[[], float] = time.time
    throttle: LoginThrottle = field(default_factory=LoginThrottle)

    async def session(self, request: Request) -> Session:
        """The request's live session; raises LoginRequired."""
        token = request.cookies.get(COOKIE)
        if not token:
            raise LoginRequired()
        found = await run_in_threadpool(self.users.session, token, self.config.session_idle_s)
        if found is None:
            raise LoginRequired(expired=True)
        return found

    async def form(self, request: Request, session: Session, method: str, admin_path: str) -> Form:
        """The submitted form of a write, after its CSRF token and the role are checked
        (Forbidden otherwise). `method admin_path` is the Admin API call it stands for."""
        raw = await request.body()
        if len(raw) > MAX_FORM_BYTES:
            raise Forbidden("The form is too large.")
        form = Form(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
        sent = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER, "")
        if not sent or not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
            raise Forbidden("The form's CSRF token is missing or invalid: reload the page.")
        self.allow(session, method, admin_path)
        return form

    @staticmethod
    def allow(session: Session, method: str, admin_path: str) -> None:
        refused = denial(session.user.role, method, admin_path)
        if refused is not None:
            raise Forbidden(f"Your role ({session.user.role}) cannot do this.")

    @staticmethod
    def can(session: Session, method: str, admin_path: str) -> bool:
        return denial(session.user.role, method, admin_path) is None

    def page(
        self, request: Request, session: Session, template: str, status: int = 200, /, **ctx: Any
    ) -> HTMLResponse:
        nav = [item for item in NAV if self.can(session, "GET", item.admin_path)]
        return self.pages.render(
            template,
            status,
            user=session.user,
            csrf_token=session.csrf_token,
            nav=nav,
            path=request.url.path,
            can_write=self.can(session, "POST", "/services"),
            **ctx,
        )

    @contextmanager
    def acting(self, session: Session) -> Iterator[Caller]:
        """Bind the user as the caller of the Admin API service functions run inside."""
        caller = Caller(f"ui:{session.user.username}", session.user.role, uuid.uuid4().hex)
        bound = bind_caller(caller)
        try:
            yield caller
        finally:
            unbind_caller(bound)

    async def blocking(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await self.admin.call(fn, *args, **kwargs)
