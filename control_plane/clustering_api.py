"""Admin API routes about data-plane nodes (Kong's `/clustering/...`)."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI

from control_plane.nodes import NodeRegistry
from control_plane.publisher import Publisher


def add_clustering_routes(app: FastAPI, nodes: NodeRegistry, publisher: Publisher) -> None:
    """Mount `/clustering/data-planes` and `/clustering/expected-config-hash` on the Admin API
    (behind its admin-token check)."""

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
