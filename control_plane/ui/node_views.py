"""Data Plane Nodes: Konnect's table (host, version, config version, sync status, last seen,
errors), refreshed in place; the "new data plane node" panel; and, when this control plane
supervises local data-plane processes, a control to scale them."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from control_plane.store.users import Session
from control_plane.ui.context import Ui

SCALE_PATH = "/clustering/local-nodes"
MAX_LOCAL_NODES = 64


def ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s ago"
    if seconds < 3600:
        return f"{seconds // 60} min ago"
    return f"{seconds // 3600} h ago"


def node_rows(ui: Ui) -> list[dict[str, Any]]:
    now = time.time()
    rows = []
    for node in ui.nodes.list():
        rows.append(
            {
                **node.as_json(),
                "last_seen_ago": ago(now - node.last_seen),
                "errors": node.last_error or node.incompatible_reason or "",
            }
        )
    return rows


def _read(path: Path | None) -> str | None:
    if path is None or not path.exists():
        return None
    return path.read_text()


def add_node_routes(app: FastAPI, ui: Ui) -> None:
    """Mount `/nodes`, `/nodes/table` (the table alone, polled) and `POST /nodes/scale`."""

    async def page(
        request: Request, session: Session, status: int = 200, error: str | None = None
    ) -> Response:
        ui.allow(session, "GET", "/clustering/data-planes")
        local = await ui.local_nodes.status() if ui.local_nodes is not None else None
        return ui.page(
            request,
            session,
            "nodes.html",
            status,
            nodes=node_rows(ui),
            expected_hash=ui.nodes.expected_hash,
            cluster_address=ui.config.cluster_address,
            cluster_cert=await run_in_threadpool(_read, ui.config.cluster_cert),
            cert_path=ui.config.cluster_cert,
            key_path=ui.config.cluster_key,
            local=local,
            can_scale=local is not None and ui.can(session, "PUT", SCALE_PATH),
            max_local=MAX_LOCAL_NODES,
            scale_error=error,
            scaled=request.query_params.get("scaled"),
        )

    @app.get("/nodes")
    async def nodes(request: Request) -> Response:
        return await page(request, await ui.session(request))

    @app.get("/nodes/table")
    async def table(request: Request) -> Response:
        session = await ui.session(request)
        ui.allow(session, "GET", "/clustering/data-planes")
        return ui.pages.render("_nodes_table.html", nodes=node_rows(ui))

    @app.post("/nodes/scale")
    async def scale(request: Request) -> Response:
        session = await ui.session(request)
        form = await ui.form(request, session, "PUT", SCALE_PATH)
        if ui.local_nodes is None or await ui.local_nodes.status() is None:
            return await page(request, session, 404, "This control plane supervises no nodes.")
        raw = form.get("desired").strip()
        if not raw.isdigit() or not 1 <= int(raw) <= MAX_LOCAL_NODES:
            message = f"Enter a whole number of nodes from 1 to {MAX_LOCAL_NODES}."
            return await page(request, session, 400, message)
        try:
            await ui.local_nodes.scale(int(raw))
        except ValueError as exc:
            return await page(request, session, 400, str(exc))
        return RedirectResponse(f"/nodes?scaled={int(raw)}", status_code=303)
