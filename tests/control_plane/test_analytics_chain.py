"""The analytics pipeline in one process, without main.py: requests through the real ProxyApp
(plain and LLM routes, the fake OpenAI) -> RequestObserver -> AnalyticsSender -> real gRPC with
mTLS -> AnalyticsService -> SqlAnalytics (SQLite file) -> `GET /analytics/requests` on the
Admin API. The control plane goes away in the middle and comes back as a new process would (new
server, new store objects, same database): every counted request arrives exactly once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

from control_plane.admin.app import create_admin_app
from control_plane.analytics import AnalyticsService, add_analytics_service
from control_plane.analytics_api import add_analytics_routes
from control_plane.nodes import NodeRegistry
from control_plane.publisher import Publisher
from control_plane.store import open_store
from control_plane.store.sql_analytics import SqlAnalytics
from control_plane.sync_server import ClusterService, create_server
from data_plane.analytics import RequestObserver
from data_plane.analytics_sender import AnalyticsSender
from data_plane.analytics_window import MinuteWindow
from data_plane.control_planes import ControlPlanes, open_channel
from lockgate.settings import ClusterTLS
from tests.control_plane.sync_harness import FakeStore, free_port, make_tls
from tests.data_plane.analytics_gateway import PROVIDER_KEY, expected_cost, gateway
from tests.fakes.openai_server import FakeOpenAI

TOKEN = "chain-token"


@dataclass
class ControlPlane:
    """What `control_plane.main` wires for analytics, on one database file."""

    database_url: str
    address: str
    tls: ClusterTLS
    server: grpc.aio.Server | None = None
    analytics: SqlAnalytics | None = None
    publisher: Publisher | None = None

    async def start(self) -> None:
        open_store(self.database_url).close()  # migrations, as open_store does at start
        self.analytics = SqlAnalytics.open(self.database_url)
        self.publisher = Publisher(FakeStore().snapshot)
        await self.publisher.start()
        self.server = create_server(
            ClusterService(self.publisher, NodeRegistry(), lambda h: None), self.address, self.tls
        )
        add_analytics_service(self.server, AnalyticsService(self.analytics))
        await self.server.start()

    async def stop(self) -> None:
        assert self.server and self.analytics and self.publisher
        await self.server.stop(grace=None)
        await self.publisher.close()
        self.analytics.close()


@pytest.fixture
async def control_plane(tmp_path: Path) -> AsyncIterator[ControlPlane]:
    cp = ControlPlane(
        f"sqlite:///{tmp_path / 'lockgate.db'}", f"127.0.0.1:{free_port()}", make_tls(tmp_path)
    )
    await cp.start()
    yield cp
    if cp.server is not None:
        await cp.stop()


async def query(database_url: str, params: dict[str, str]) -> httpx.Response:
    """`GET /analytics/requests` on an Admin API app over the database (a fresh one each time,
    as after a control-plane restart)."""
    store = open_store(database_url)
    analytics = SqlAnalytics.open(database_url)
    app = create_admin_app(store, TOKEN, lambda e: None)
    add_analytics_routes(app, analytics)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://admin",
            headers={"Kong-Admin-Token": TOKEN},
        ) as client:
            return await client.get("/analytics/requests", params=params)
    finally:
        analytics.close()
        store.close()


def by_group(rows: list[dict[str, Any]], field: str) -> dict[tuple[Any, ...], int]:
    """Sum of `field` per group over every bucket."""
    out: dict[tuple[Any, ...], int] = {}
    for row in rows:
        key = tuple(sorted(row["group"].items()))
        out[key] = out.get(key, 0) + row[field]
    return out


async def eventually_flushed(sender: AnalyticsSender, timeout_s: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while not await sender.flush():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not delivered: {sender.last_error}")
        await asyncio.sleep(0.1)


async def test_every_counted_request_arrives_once_across_a_control_plane_restart(
    control_plane: ControlPlane,
) -> None:
    cp = control_plane
    planes = ControlPlanes([(cp.address, open_channel(cp.address, cp.tls))])
    window = MinuteWindow()
    sender = AnalyticsSender(window, lambda: planes.channel, "node-1", timeout_s=2)
    usage: list[dict[str, int]] = []
    plain_ok = 0
    try:
        with FakeOpenAI(api_key=PROVIDER_KEY) as fake:
            async with gateway(fake, RequestObserver(window)) as gw:

                async def traffic(rounds: int) -> None:
                    nonlocal plain_ok
                    for i in range(rounds):
                        assert (await gw.plain()).status_code == 200
                        plain_ok += 1
                        reply = await gw.llm("word " * (i + 1))
                        assert reply.status_code == 200, reply.text
                        usage.append(reply.json()["usage"])
                    assert (await gw.llm("x", key="wrong")).status_code == 401

                await traffic(3)
                await eventually_flushed(sender)
                await sender.flush()  # nothing new: a no-op, not a second count
                await cp.stop()  # the control plane goes away ...
                await traffic(4)  # ... while the data plane keeps counting
                assert not await sender.flush()
                assert sender.last_error == "UNAVAILABLE"
                await traffic(2)
                await cp.start()  # a new control plane process on the same database
                await eventually_flushed(sender)
    finally:
        await planes.close()

    reply = await query(cp.database_url, {"interval": "day", "group_by": "route,status_class"})
    assert reply.status_code == 200, reply.text
    rows = reply.json()["data"]
    assert by_group(rows, "requests") == {
        (("route", "plain"), ("status_class", "2xx")): plain_ok,
        (("route", "llm"), ("status_class", "2xx")): len(usage),
        (("route", "llm"), ("status_class", "4xx")): 3,
    }
    reply = await query(
        cp.database_url,
        {"interval": "day", "group_by": "provider,model,consumer", "provider": "openai"},
    )
    rows = reply.json()["data"]
    assert [r["group"] for r in rows] == [
        {"provider": "openai", "model": "gpt-4o", "consumer": "alice"}
    ] * len(rows)
    prompt = sum(u["prompt_tokens"] for u in usage)
    completion = sum(u["completion_tokens"] for u in usage)
    assert sum(r["requests"] for r in rows) == len(usage) == 9
    assert sum(r["prompt_tokens"] for r in rows) == prompt
    assert sum(r["completion_tokens"] for r in rows) == completion
    assert sum(r["total_tokens"] for r in rows) == prompt + completion
    cost_nanos = sum(
        round(expected_cost(u["prompt_tokens"], u["completion_tokens"]) * 1e9) for u in usage
    )
    assert round(sum(r["cost"] for r in rows) * 1e9) == cost_nanos
    latency = rows[0]["latency_ms"]
    assert 0 < latency["p50"] <= latency["p95"] <= latency["p99"]
