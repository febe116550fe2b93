"""Analytics end to end with real processes (`lockgate control-plane`, `lockgate data-plane`):
plain and LLM requests (key-auth + ai-proxy-advanced with costs, the fake OpenAI over real
HTTP), the control plane killed (-9) in the middle with traffic flowing and started again on
the same database: `/analytics/requests` counts exactly the requests sent (requests, tokens,
cost), and keeps doing so after further resends. Also `/metrics` on the data plane's status
port and on the control plane's UI port."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from control_plane.store.sqlite_memory import SOFT_HEAP_LIMIT_BYTES
from tests.e2e.sync_procs import (
    Cluster,
    ControlPlane,
    DataPlane,
    cluster_at,
    scrape,
    wait_for,
)
from tests.fakes.openai_server import FakeOpenAI
from tests.faults.proc_stats import rss_kib

pytestmark = pytest.mark.e2e

PROVIDER_KEY = "sk-provider-e2e"
CONSUMER_KEY = "alice-e2e-key"
INPUT_COST = 2.5
OUTPUT_COST = 10.0
FLUSH_S = "1"  # LOCKGATE_DP_ANALYTICS_FLUSH_S: deliver within a second, not the default 10


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    with cluster_at(tmp_path) as cluster:
        yield cluster


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=PROVIDER_KEY) as server:
        yield server


def configure(cp: ControlPlane, fake_url: str) -> None:
    def ok(reply: httpx.Response) -> dict[str, Any]:
        assert reply.status_code in (200, 201), reply.text
        body: dict[str, Any] = reply.json()
        return body

    ok(cp.api("POST", "/services", json={"name": "plain-svc", "url": fake_url}))
    ok(
        cp.api(
            "POST",
            "/services/plain-svc/routes",
            json={"name": "plain", "paths": ["/v1"], "strip_path": False},
        )
    )
    ok(cp.api("POST", "/services", json={"name": "llm-svc", "url": "http://unused.invalid:9"}))
    route = ok(cp.api("POST", "/services/llm-svc/routes", json={"name": "llm", "paths": ["/llm"]}))
    ok(cp.api("POST", "/consumers", json={"username": "alice"}))
    ok(cp.api("POST", "/consumers/alice/key-auth", json={"key": CONSUMER_KEY}))
    ok(
        cp.api(
            "POST",
            f"/routes/{route['id']}/plugins",
            json={"name": "key-auth", "config": {"key_names": ["apikey"]}},
        )
    )
    target = {
        "route_type": "llm/v1/chat",
        "auth": {"header_name": "Authorization", "header_value": f"Bearer {PROVIDER_KEY}"},
        "model": {
            "provider": "openai",
            "name": "gpt-4o",
            "options": {
                "upstream_url": fake_url + "/v1/chat/completions",
                "input_cost": INPUT_COST,
                "output_cost": OUTPUT_COST,
            },
        },
    }
    ok(
        cp.api(
            "POST",
            f"/routes/{route['id']}/plugins",
            json={"name": "ai-proxy-advanced", "config": {"targets": [target]}},
        )
    )


class Traffic:
    """Sends requests and remembers what the analytics must say about them."""

    def __init__(self, dp: DataPlane) -> None:
        self.client = httpx.Client(base_url=dp.proxy_url, timeout=10)
        self.plain = 0
        self.denied = 0
        self.usage: list[dict[str, int]] = []

    def round(self, n: int, *, denied: bool = True) -> None:
        for i in range(n):
            chat = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
            auth = {"Authorization": f"Bearer {PROVIDER_KEY}"}
            reply = self.client.post("/v1/chat/completions", json=chat, headers=auth)
            assert reply.status_code == 200, reply.text
            self.plain += 1
            words = {"model": "gpt-4o", "messages": [{"role": "user", "content": "w " * (i + 1)}]}
            reply = self.client.post("/llm", json=words, headers={"apikey": CONSUMER_KEY})
            assert reply.status_code == 200, reply.text
            self.usage.append(reply.json()["usage"])
        if denied:  # an unknown key is looked up on the control plane: only while it is up
            reply = self.client.post("/llm", json={}, headers={"apikey": "wrong"})
            assert reply.status_code == 401, reply.text
            self.denied += 1

    def expected(self) -> dict[Any, Any]:
        prompt = sum(u["prompt_tokens"] for u in self.usage)
        completion = sum(u["completion_tokens"] for u in self.usage)
        # ai-proxy's cost per answer, in the nano units analytics adds up exactly
        cost = sum(
            round(
                (u["prompt_tokens"] * INPUT_COST + u["completion_tokens"] * OUTPUT_COST) / 1e6 * 1e9
            )
            for u in self.usage
        )
        return {
            ("plain", "2xx"): self.plain,
            ("llm", "2xx"): len(self.usage),
            ("llm", "4xx"): self.denied,
            "tokens": (prompt, completion),
            "cost_nanos": cost,
        }


def observed(cp: ControlPlane) -> dict[Any, Any] | None:
    try:
        reply = cp.api(
            "GET",
            "/analytics/requests",
            params={"interval": "day", "group_by": "route,status_class"},
        )
    except httpx.HTTPError:
        return None
    assert reply.status_code == 200, reply.text
    out: dict[Any, Any] = {"tokens": (0, 0), "cost_nanos": 0}
    cost = 0.0
    for row in reply.json()["data"]:
        key = (row["group"]["route"], row["group"]["status_class"])
        out[key] = out.get(key, 0) + row["requests"]
        prompt, completion = out["tokens"]
        out["tokens"] = (prompt + row["prompt_tokens"], completion + row["completion_tokens"])
        cost += row["cost"]
    out["cost_nanos"] = round(cost * 1e9)
    return out


def connected(cp: ControlPlane, dp: DataPlane) -> bool:
    row = cp.data_planes().get(dp.node_id, {})
    return bool(row.get("sync_status") == "in_sync")


def test_counts_match_exactly_across_a_control_plane_crash(
    cluster: Cluster, fake: FakeOpenAI
) -> None:
    cp = cluster.control_plane()
    configure(cp, fake.url)
    dp = cluster.data_plane("dp-analytics", [cp.cluster_address], start=False)
    dp.env["LOCKGATE_DP_ANALYTICS_FLUSH_S"] = FLUSH_S
    dp.start()
    wait_for(lambda: dp.ready() == 200 and observed(cp) is not None, 30, "node ready", cp, dp)
    traffic = Traffic(dp)
    try:
        traffic.round(3)
        wait_for(lambda: observed(cp) == traffic.expected(), 30, "first minutes stored", cp, dp)

        traffic.round(2)
        cp.kill()  # kill -9 right after traffic: some counts were not sent yet
        traffic.round(4, denied=False)  # the node keeps serving (and counting) meanwhile
        time.sleep(float(FLUSH_S) * 2)  # at least one failed delivery attempt
        cp.start()
        cp.wait_ready()
        # unknown keys are looked up on the control plane: wait for the node to reconnect
        wait_for(lambda: connected(cp, dp), 30, "node reconnected", cp, dp)
        traffic.round(2)

        wait_for(lambda: observed(cp) == traffic.expected(), 40, "every count stored", cp, dp)
        time.sleep(float(FLUSH_S) * 3)  # later flushes and resends change nothing
        assert observed(cp) == traffic.expected()
        assert len(traffic.usage) == 11 and traffic.denied == 3

        # Prometheus on the data plane's status port and the control plane's UI port
        metrics = httpx.get(f"http://127.0.0.1:{dp.status_port}/metrics", timeout=5).text
        llm = 'service="llm-svc",route="llm"'
        assert f'kong_http_requests_total{{{llm},code="200",source="service"}} 11' in metrics
        prompt = traffic.expected()["tokens"][0]
        model = 'ai_provider="openai",ai_model="gpt-4o"'
        assert f'ai_llm_tokens_total{{{model},token_type="prompt_tokens"}} {prompt}' in metrics
        assert "lockgate_analytics_unsent_requests 0" in metrics
        ui = cp.env["LOCKGATE_UI_LISTEN"]
        cp_metrics = httpx.get(f"http://{ui}/metrics", timeout=5).text
        assert 'lockgate_data_plane_nodes{sync_status="in_sync"} 1' in cp_metrics
        # both planes' own figures, in the standard process_* names, match /proc
        for proc, port in ((dp, dp.status_port), (cp, None)):
            assert proc.proc is not None
            rss_bytes = rss_kib(proc.proc.pid) * 1024
            url = f"http://127.0.0.1:{port}/metrics" if port else f"http://{ui}/metrics"
            values = scrape(url)
            assert abs(values["process_resident_memory_bytes"] - rss_bytes) < rss_bytes * 0.2
            assert values["process_open_fds"] >= 5
            assert values["process_cpu_seconds_total"] > 0
        sqlite = cp.metric("lockgate_sqlite_memory_bytes")  # SQLite's own heap, bounded
        assert cluster.database_url.startswith("sqlite:")
        assert sqlite is not None and 0 < sqlite <= SOFT_HEAP_LIMIT_BYTES + 2**20
    finally:
        traffic.client.close()
