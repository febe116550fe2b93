"""Prometheus `/metrics` on the data plane's status port: requests by service/route/code, the
latency histogram, LLM requests/tokens/cost by provider/model, config version, cache size."""

from __future__ import annotations

import re
import time

import httpx

from data_plane.analytics import RequestObserver
from data_plane.analytics_sender import AnalyticsSender
from data_plane.analytics_window import LATENCY_BOUNDS_MS, MinuteWindow
from data_plane.metrics import DataPlaneMetrics
from data_plane.status import StatusApp
from gateway.prometheus_text import Exposition
from tests.data_plane.analytics_gateway import PROVIDER_KEY, expected_cost, gateway
from tests.fakes.openai_server import FakeOpenAI


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def samples(text: str) -> dict[str, float]:
    """`name{labels}` -> value of every sample line."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            out[name] = float(value)
    return out


async def scrape(metrics: DataPlaneMetrics) -> httpx.Response:
    status = StatusApp(lambda: {}, lambda: True, metrics.render)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=status), base_url="http://status"
    ) as client:
        return await client.get("/metrics")


async def test_metrics_count_what_the_proxy_served() -> None:
    clock = Clock()
    window = MinuteWindow(clock=clock)
    metrics = DataPlaneMetrics(
        window,
        config_version=lambda: 42,
        credential_cache_size=lambda: 7,
        unresolved_references=lambda: 1,
    )
    sender = AnalyticsSender(window, lambda: None, "node-1")  # type: ignore[arg-type,return-value]
    metrics.add_writer(sender.write_metrics)
    usage = []
    with FakeOpenAI(api_key=PROVIDER_KEY) as fake:
        async with gateway(fake, RequestObserver(window)) as gw:
            for _ in range(2):
                assert (await gw.plain()).status_code == 200
            assert (await gw.client.get("/nowhere")).status_code == 404
            # the minute ends and the control plane acknowledges it: the window lets go of it,
            # the totals since start keep it
            clock.now += 60
            window.acknowledged(window.pending())
            assert window.minutes == 0
            assert (await gw.plain()).status_code == 200
            for words in ("one", "one two three"):
                reply = await gw.llm(words)
                assert reply.status_code == 200, reply.text
                usage.append(reply.json()["usage"])
            assert (await gw.llm("x", key="wrong")).status_code == 401

    reply = await scrape(metrics)
    assert reply.status_code == 200
    assert reply.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    text = reply.text
    got = samples(text)
    plain = 'service="plain-svc",route="plain"'
    llm = 'service="llm-svc",route="llm"'
    assert got[f'kong_http_requests_total{{{plain},code="200",source="service"}}'] == 3
    assert got[f'kong_http_requests_total{{{llm},code="200",source="service"}}'] == 2
    assert got[f'kong_http_requests_total{{{llm},code="401",source="kong"}}'] == 1
    assert got['kong_http_requests_total{service="",route="",code="404",source="kong"}'] == 1
    # histogram: cumulative buckets ending in +Inf == count, one series per service/route
    assert got[f'kong_request_latency_ms_bucket{{{plain},le="+Inf"}}'] == 3
    assert got[f"kong_request_latency_ms_count{{{plain}}}"] == 3
    assert got[f"kong_request_latency_ms_sum{{{plain}}}"] > 0
    les = re.findall(
        r'kong_request_latency_ms_bucket\{service="plain-svc",route="plain",le="([^"]+)"', text
    )
    assert les == [*(str(int(b)) for b in LATENCY_BOUNDS_MS), "+Inf"]
    model = 'ai_provider="openai",ai_model="gpt-4o"'
    prompt = sum(u["prompt_tokens"] for u in usage)
    completion = sum(u["completion_tokens"] for u in usage)
    assert got[f"ai_llm_requests_total{{{model}}}"] == 2
    assert got[f'ai_llm_tokens_total{{{model},token_type="prompt_tokens"}}'] == prompt
    assert got[f'ai_llm_tokens_total{{{model},token_type="completion_tokens"}}'] == completion
    assert got[f'ai_llm_tokens_total{{{model},token_type="total_tokens"}}'] == prompt + completion
    cost = sum(expected_cost(u["prompt_tokens"], u["completion_tokens"]) for u in usage)
    assert abs(got[f"ai_llm_cost_total{{{model}}}"] - cost) < 1e-12
    assert got["lockgate_config_version"] == 42
    assert got["lockgate_credential_cache_entries"] == 7
    assert got["lockgate_unresolved_vault_references"] == 1
    assert got["lockgate_analytics_unsent_requests"] == 4
    assert got["lockgate_analytics_dropped_requests_total"] == 0
    assert "# TYPE kong_request_latency_ms histogram" in text
    assert "# TYPE ai_llm_tokens_total counter" in text


async def test_status_port_without_metrics_answers_404() -> None:
    status = StatusApp(lambda: {}, lambda: True)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=status), base_url="http://status"
    ) as client:
        assert (await client.get("/metrics")).status_code == 404


def test_label_values_are_escaped() -> None:
    out = Exposition()
    out.sample("m", (("route", 'a"b\\c\nd'),), 1.5)
    assert out.text() == 'm{route="a\\"b\\\\c\\nd"} 1.5\n'
