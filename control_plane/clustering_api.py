"""Admin API routes about data-plane nodes (Kong's `/clustering/...`), and Lockgate's
`/clustering/local-nodes` for the data planes a control plane runs itself."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from control_plane.nodes import NodeRegistry
from control_plane.publisher import Publisher
from control_plane.supervisor import MAX_NODES, Supervisor

NOT_SUPERVISING = "this control plane does not supervise local data planes"
_COUNT_RULE = f"expected an integer from 1 to {MAX_NODES}"


def add_clustering_routes(
    app: FastAPI,
    nodes: NodeRegistry,
    publisher: Publisher,
    *,
    local_nodes: Supervisor | None = None,
) -> None:
    """Mount `/clustering/data-planes`, `/clustering/expected-config-hash` and
    `/clustering/local-nodes` on the Admin API (behind its admin-token check).

    `/clustering/local-nodes` answers 404 unless `local_nodes` is given: GET lists the
    supervised nodes, PUT `{"count": N}` (1..64) scales them and answers the same body at once
    (nodes then move through starting/draining; poll GET to follow).
    """

    @app.get("/clustering/data-planes")
    def data_planes() -> dict[str, Any]:
        return {"data": [n.as_json() for n in nodes.list()], "next": None}

    @app.get("/clustering/expected-config-hash")
    def expected_hash() -> dict[str, Any]:
        snap = publisher.current
        return {
            "expected_hash": snap.hash if snap else "",
            "version": snap.version if snap else 0,
        }

    @app.get("/clustering/local-nodes")
    def list_local_nodes() -> JSONResponse:
        if local_nodes is None:
            return JSONResponse({"message": NOT_SUPERVISING}, status_code=404)
        return JSONResponse(local_nodes.as_json())

    @app.put("/clustering/local-nodes")
    async def scale_local_nodes(request: Request) -> JSONResponse:
        if local_nodes is None:
            return JSONResponse({"message": NOT_SUPERVISING}, status_code=404)
        count = _count(await request.body())
        if count is None:
            return JSONResponse(
                {
                    "code": 2,
                    "name": "schema violation",
                    "message": f"schema violation (count: {_COUNT_RULE})",
                    "fields": {"count": _COUNT_RULE},
                },
                status_code=400,
            )
        await local_nodes.scale(count)
        return JSONResponse(local_nodes.as_json())


def _count(raw: bytes) -> int | None:
    """The body's `count` when it is an integer in range (JSON, not a bool or a float)."""
    try:
        doc = json.loads(raw or b"null")
    except ValueError:
        return None
    count = doc.get("count") if isinstance(doc, dict) else None
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_NODES:
        return None
    return count
