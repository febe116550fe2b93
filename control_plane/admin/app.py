"""`create_admin_app`: the Kong-compatible Admin API as one FastAPI app."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI

from control_plane.admin.auth import AdminTokenMiddleware, TokenCheck, token_check
from control_plane.admin.config import add_config_route
from control_plane.admin.context import AdminContext
from control_plane.admin.errors import install_handlers
from control_plane.admin.info import add_info_routes
from control_plane.admin.resources import add_entity_routes
from control_plane.store.events import ChangeEvent
from control_plane.store.protocol import Store
from gateway.plugins import registry
from gateway.plugins.base import Plugin


def create_admin_app(
    store: Store,
    admin_token: str | TokenCheck,
    on_change: Callable[[ChangeEvent], None],
    plugins: Mapping[str, Plugin[Any]] | None = None,
) -> FastAPI:
    """The Admin API over `store`.

    Every request must carry the admin token (`Kong-Admin-Token` or `Authorization: Bearer`);
    `admin_token` is the token itself or a checker callable. After every committed write,
    `on_change` is called on the event loop thread with the write's ChangeEvent; it must not
    block (hand work to a queue). Writes that change nothing (a no-op /config) do not call it.
    `plugins` replaces the bundled plugin registry (tests).
    """
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    ctx = AdminContext(store, on_change, registry if plugins is None else lambda: plugins)
    install_handlers(app)
    add_info_routes(app, ctx)
    add_config_route(app, ctx)
    add_entity_routes(app, ctx)
    app.add_middleware(AdminTokenMiddleware, check=token_check(admin_token))
    return app
