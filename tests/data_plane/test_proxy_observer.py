"""The proxy's observer hook sees each request's status and timings (for metrics/analytics)."""

from __future__ import annotations

import httpx

from data_plane.proxy import ProxyApp
from data_plane.runtime import RuntimeHolder, compile_runtime
from data_plane.upstream import UpstreamClient
from gateway.context import RequestContext
from gateway.credentials import InMemoryCredentials
from gateway.entities import Ref, Route, Service
from gateway.plugins import registry
from gateway.snapshot import Snapshot
from tests.fakes.openai_server import FakeOpenAI


async def test_observer_sees_status_and_latencies() -> None:
    seen: list[tuple[int, str | None, float | None, float]] = []

    def observe(ctx: RequestContext) -> None:
        assert ctx.response is not None
        route = ctx.route.name if ctx.route else None
        seen.append((ctx.response.status, route, ctx.latencies.upstream_ms, ctx.latencies.total_ms))

    with FakeOpenAI() as fake:
        host, port = fake.url.removeprefix("http://").split(":")
        service = Service(name="s", host=host, port=int(port))
        route = Route(name="r", paths=["/v1"], strip_path=False, service=Ref(id=service.id))
        holder = RuntimeHolder()
        holder.swap(
            compile_runtime(
                Snapshot.create(1, (service,), (route,)), registry(), InMemoryCredentials()
            )
        )
        upstream = UpstreamClient()
        await upstream.start()
        try:
            app = ProxyApp(holder, upstream, observer=observe)
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://gw"
            ) as client:
                chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
                assert (await client.post("/v1/chat/completions", json=chat)).status_code == 200
                assert (await client.get("/nowhere")).status_code == 404
        finally:
            await upstream.close()

    assert [(status, name) for status, name, _, _ in seen] == [(200, "r"), (404, None)]
    proxied, unrouted = seen
    assert proxied[2] is not None and proxied[2] >= 0 and proxied[3] >= proxied[2]
    assert unrouted[2] is None and unrouted[3] >= 0
