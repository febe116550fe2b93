"""`GET /`, `GET /status` and `GET /plugins/enabled`: what the node runs and whether its
database answers."""

from __future__ import annotations

import importlib.metadata
import socket
import uuid
from typing import Any

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from sqlalchemy.exc import SQLAlchemyError

from control_plane.admin.context import AdminContext
from control_plane.store.protocol import Reader
from gateway.entities import Plugin


def _version() -> str:
    try:
        return importlib.metadata.version("lockgate")
    except importlib.metadata.PackageNotFoundError:
        return "0.0.0"


def add_info_routes(app: FastAPI, ctx: AdminContext) -> None:
    """Mount `GET /` (version, node, plugins), `GET /status` and `GET /plugins/enabled`."""
    node_id = str(uuid.uuid4())

    @app.get("/")
    async def root() -> dict[str, Any]:
        plugins = ctx.plugins()

        def in_use(reader: Reader) -> list[str]:
            return sorted({p.name for p in reader.all(Plugin)})

        return {
            "tagline": "Welcome to lockgate",
            "version": _version(),
            "hostname": socket.gethostname(),
            "node_id": node_id,
            "configuration": {"role": "control_plane", "admin_gui_listen": None},
            "plugins": {
                "available_on_server": {
                    name: {"version": p.version, "priority": p.priority}
                    for name, p in sorted(plugins.items())
                },
                "enabled_in_cluster": await ctx.read(in_use),
            },
        }

    @app.get("/status")
    async def status() -> JSONResponse:
        try:
            revision = await ctx.read(lambda r: r.revision())
        except SQLAlchemyError:
            return JSONResponse({"database": {"reachable": False}}, status_code=503)
        return JSONResponse({"database": {"reachable": True}, "configuration_revision": revision})

    @app.get("/plugins/enabled")
    async def enabled() -> dict[str, Any]:
        return {"enabled_plugins": sorted(ctx.plugins())}
