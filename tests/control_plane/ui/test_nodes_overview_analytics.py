"""Overview, Data Plane Nodes (table, new-node panel, scaling) and Analytics pages."""

from __future__ import annotations

import json
import re
from typing import Any

from fastapi.testclient import TestClient

from control_plane.nodes import NodeStatus
from tests.control_plane.ui.conftest import Browser, Env, FakeAnalytics, FakeLocalNodes

ROWS = [
    {
        "bucket": 1_899_999_940,
        "group": {
            "status_class": "2xx",
            "consumer": "openai-client",
            "model": "gpt-4o",
            "provider": "openai",
        },
        "requests": 3,
        "latency_ms": {"p50": 12.5, "p95": 40.0, "p99": 41.0},
        "prompt_tokens": 30,
        "completion_tokens": 12,
        "total_tokens": 42,
        "cost": 0.00042,
    },
    {
        "bucket": 1_899_999_940,
        "group": {"status_class": "4xx", "consumer": None, "model": None, "provider": None},
        "requests": 1,
        "latency_ms": {"p50": 1.0, "p95": 1.0, "p99": 1.0},
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "total_tokens": 0,
        "cost": 0.0,
    },
]


def _chart(html: str, chart_id: str) -> dict[str, Any]:
    found = re.search(
        rf'<script type="application/json" id="{chart_id}-data">(.*?)</script>', html, re.S
    )
    assert found is not None, chart_id
    data: dict[str, Any] = json.loads(found.group(1))
    return data


def _node(env: Env, node_id: str, config_hash: str, error: str | None = None) -> None:
    env.nodes.connect(
        NodeStatus(
            id=node_id,
            hostname=f"host-{node_id}",
            ip="10.0.0.7",
            version="0.1.0",
            labels={},
            plugins={},
            config_hash=config_hash,
            config_version=7,
            last_error=error,
        )
    )


def test_overview_shows_the_proxy_url_and_sdk_snippet(admin: Browser) -> None:
    admin.post("/services", {"name": "svc", "url": "http://up"})
    admin.post("/routes", {"name": "r", "paths": "/anything"})
    page = admin.get("/").text
    assert '<pre id="proxy-url"><code>http://proxy.example:8000</code></pre>' in page
    assert "export KONNECT_PROXY_URL=http://proxy.example:8000" in page
    assert 'base_url=os.environ["KONNECT_PROXY_URL"] + "/anything"' in page
    assert 'data-copy="proxy-url"' in page
    assert "Analytics is not available on this control plane." in page


def test_overview_counts_connected_and_in_sync_nodes(env: Env, admin: Browser) -> None:
    env.nodes.set_expected("h1")
    _node(env, "a", "h1")
    _node(env, "b", "old")
    page = admin.get("/").text
    assert re.search(r'id="nodes-connected">2 of 2<', page)
    assert re.search(r'id="nodes-in-sync">1 of 2<', page)


def test_nodes_table_has_konnects_columns(env: Env, admin: Browser) -> None:
    env.nodes.set_expected("h1")
    _node(env, "a", "h1")
    _node(env, "b", "old", error="plugin x is not installed")
    page = admin.get("/nodes").text
    for column in ("Host", "Version", "Config version", "Sync status", "Last seen", "Errors"):
        assert f'<th scope="col">{column}</th>' in page
    assert "host-a" in page and "in sync" in page
    assert "host-b" in page and "out of sync" in page
    assert "plugin x is not installed" in page
    assert 'hx-get="/nodes/table"' in page
    table = admin.get("/nodes/table").text
    assert "host-b" in table and "<html" not in table


def test_new_node_panel_has_the_command_and_certificate(admin: Browser) -> None:
    page = admin.get("/nodes").text
    assert "export LOCKGATE_CONTROL_PLANE=cp.example:8005" in page
    assert "lockgate data-plane" in page
    assert "-----BEGIN CERTIFICATE-----" in page
    assert "cluster.key" in page
    assert "PRIVATE KEY" not in page


def test_scale_control_is_hidden_without_a_supervisor(admin: Browser) -> None:
    page = admin.get("/nodes").text
    assert "Number of local nodes" not in page
    assert admin.post("/nodes/scale", {"desired": "3"}).status_code == 404


def test_scale_local_nodes(env: Env, browser_for: Any) -> None:
    env.local = FakeLocalNodes(desired=1)
    admin: Browser = browser_for("admin")
    page = admin.get("/nodes").text
    assert '<label for="desired">Number of local nodes</label>' in page
    assert re.search(r'id="local-desired">1<', page)
    response = admin.post("/nodes/scale", {"desired": "3"})
    assert response.status_code == 303
    assert env.local.scaled == [3]
    after = admin.get(response.headers["location"]).text
    assert "Scaling to 3 nodes." in after
    assert after.count("<td>running</td>") == 3
    bad = admin.post("/nodes/scale", {"desired": "many"})
    assert bad.status_code == 400
    refused = admin.post("/nodes/scale", {"desired": "13"})
    assert refused.status_code == 400
    assert "13 nodes is unlucky" in refused.text
    assert env.local.scaled == [3]


def test_a_viewer_cannot_scale(env: Env, browser_for: Any) -> None:
    env.local = FakeLocalNodes(desired=2)
    viewer: Browser = browser_for("viewer")
    assert "Number of local nodes" not in viewer.get("/nodes").text
    assert viewer.post("/nodes/scale", {"desired": "1"}).status_code == 403
    assert env.local.scaled == []


def test_analytics_charts_and_totals(env: Env, browser_for: Any) -> None:
    env.analytics = FakeAnalytics(ROWS)
    viewer: Browser = browser_for("viewer")
    env.analytics.queries.clear()  # logging in showed the overview
    page = viewer.get("/analytics?range=6h").text
    assert re.search(r'id="total-requests">4<', page)
    status = _chart(page, "status-chart")
    assert {d["label"]: d["data"] for d in status["datasets"]} == {"2xx": [3.0], "4xx": [1.0]}
    latency = _chart(page, "latency-chart")
    assert [d["label"] for d in latency["datasets"]] == ["p50 (ms)", "p95 (ms)"]
    tokens = _chart(page, "tokens-consumer")
    assert tokens["labels"] == ["openai-client", "-"]
    cost = _chart(page, "cost-model")
    assert cost["datasets"][0]["data"] == [0.00042, 0.0]
    assert (
        "<td>openai-client</td><td>3</td><td>30</td><td>12</td><td>42</td><td>0.000420</td>" in page
    )
    queries = env.analytics.queries
    assert {q.interval for q in queries} == {"minute"}
    assert {tuple(q.group_by) for q in queries} == {
        ("status_class",),
        (),
        ("consumer",),
        ("model",),
        ("provider",),
    }
    assert all(q.end - q.start == 6 * 3600 for q in queries)


def test_overview_chart_uses_analytics(env: Env, browser_for: Any) -> None:
    env.analytics = FakeAnalytics(ROWS)
    admin: Browser = browser_for("admin")
    page = admin.get("/").text
    assert re.search(r'id="total-requests">4<', page)
    chart = _chart(page, "requests-chart")
    assert sum(sum(d["data"]) for d in chart["datasets"]) == 4


def test_analytics_unavailable_or_failing_says_so(env: Env, browser_for: Any) -> None:
    viewer: Browser = browser_for("viewer")
    assert "Analytics is not available" in viewer.get("/analytics").text

    async def broken(query: Any) -> dict[str, Any]:
        raise RuntimeError("database down")

    env.analytics = broken  # type: ignore[assignment]
    with TestClient(env.app()) as client:
        again = Browser(client)
        again.login("viewer-user")
        page = again.get("/analytics")
    assert page.status_code == 200
    assert "The analytics query failed" in page.text
