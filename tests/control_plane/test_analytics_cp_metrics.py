"""The control plane's Prometheus `/metrics`: nodes by sync status, the served config version,
Admin API requests by method and status (refused ones too), analytics reports; no token."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient

from control_plane.admin.app import create_admin_app
from control_plane.metrics import AdminRequestCounter, ControlPlaneMetrics, add_metrics_route
from control_plane.nodes import NodeRegistry, NodeStatus
from control_plane.publisher import Publisher
from control_plane.store import Store
from tests.control_plane.conftest import TOKEN
from tests.control_plane.sync_harness import FakeStore


def node(node_id: str) -> NodeStatus:
    return NodeStatus(
        id=node_id, hostname=node_id, ip="127.0.0.1", version="0.1.0", labels={}, plugins={}
    )


async def test_metrics_page(store: Store) -> None:
    nodes = NodeRegistry()
    fake = FakeStore(version=5)
    publisher = Publisher(fake.snapshot, on_snapshot=lambda s: nodes.set_expected(s.hash))
    await publisher.start()
    try:
        expected = publisher.current
        assert expected is not None
        synced = nodes.connect(node("a"))
        nodes.applied("a", config_hash=expected.hash, version=expected.version)
        nodes.connect(node("b"))
        gone = nodes.connect(node("c"))
        nodes.disconnect(gone)
        assert synced.sync_status == "in_sync"
        metrics = ControlPlaneMetrics(nodes, publisher, analytics_reports=lambda: 12)

        admin = create_admin_app(store, TOKEN, lambda e: None)
        admin.add_middleware(AdminRequestCounter, metrics=metrics)
        with TestClient(admin) as client:
            assert client.get("/services", headers={"Kong-Admin-Token": TOKEN}).status_code == 200
            assert client.get("/services", headers={"Kong-Admin-Token": TOKEN}).status_code == 200
            assert client.get("/services").status_code == 401
            assert client.request("BREW", "/services").status_code == 401

        ui = FastAPI()
        add_metrics_route(ui, metrics)
        with TestClient(ui) as client:
            reply = client.get("/metrics")  # no token, no login
        assert reply.status_code == 200
        assert reply.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
        lines = [line for line in reply.text.splitlines() if not line.startswith("#")]
        assert lines == [
            'lockgate_data_plane_nodes{sync_status="in_sync"} 1',
            'lockgate_data_plane_nodes{sync_status="out_of_sync"} 1',
            'lockgate_data_plane_nodes{sync_status="incompatible"} 0',
            'lockgate_data_plane_nodes{sync_status="disconnected"} 1',
            "lockgate_config_version 5",
            'lockgate_admin_api_requests_total{method="GET",code="200"} 2',
            'lockgate_admin_api_requests_total{method="GET",code="401"} 1',
            'lockgate_admin_api_requests_total{method="OTHER",code="401"} 1',
            "lockgate_analytics_reports_total 12",
        ]
        assert "# TYPE lockgate_admin_api_requests_total counter" in reply.text
    finally:
        await publisher.close()
