"""`create_admin_app`: the Kong-compatible Admin API as one FastAPI app."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI

from control_plane.admin.audit import add_audit_routes
from control_plane.admin.auth import (
    AdminAuthMiddleware,
    Clock,
    TokenCheck,
    TokenResolver,
    token_check,
)
from control_plane.admin.config import add_config_route
from control_plane.admin.context import AdminContext
from control_plane.admin.errors import install_handlers
from control_plane.admin.info import add_info_routes
from control_plane.admin.openapi import install_openapi
from control_plane.admin.resources import ENTITY_KINDS, add_entity_routes
from control_plane.admin.schemas import add_schema_routes
from control_plane.admin.tokens import add_token_routes
from control_plane.store.events import ChangeEvent
from control_plane.store.protocol import Store
from gateway.plugins import registry
from gateway.plugins.base import Plugin


def create_admin_app(
    store: Store,
    admin_token: str | TokenCheck,
    on_change: Callable[[ChangeEvent], None],
    plugins: Mapping[str, Plugin[Any]] | None = None,
    *,
    clock: Clock = time.time,
) -> FastAPI:
    """The Admin API over `store`.

    Every request must carry an admin token (`Kong-Admin-Token` or `Authorization: Bearer`):
    the bootstrap token (`admin_token`: the token itself or a checker callable; role admin,
    actor "bootstrap") or one created with `POST /admin-tokens` (its role decides what it may
    do; see control_plane.admin.roles). After every committed write, `on_change` is called on
    the event loop thread with the write's ChangeEvent; it must not block (hand work to a
    queue). Writes that change nothing (a no-op /config) do not call it. `plugins` replaces the
    bundled plugin registry (tests); `clock` decides admin-token expiry (tests).
    """
    app = FastAPI(
        title="Lockgate Admin API", docs_url=None, redoc_url=None, openapi_url="/openapi.json"
    )
    ctx = AdminContext(store, on_change, registry if plugins is None else lambda: plugins)
    install_handlers(app)
    add_info_routes(app, ctx)
    add_schema_routes(app, ctx)
    add_config_route(app, ctx)
    add_token_routes(app, ctx)
    add_audit_routes(app, ctx)
    add_entity_routes(app, ctx)
    install_openapi(app, ENTITY_KINDS)
    resolver = TokenResolver(token_check(admin_token), store, clock)
    app.add_middleware(AdminAuthMiddleware, resolver=resolver)
    return app
