"""ai-proxy-advanced balancing, failover and circuit breaker through the real ProxyApp over real
HTTP, with the openai SDK as the client and one fake OpenAI per target (each records what it got).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest

from gateway.entities import Plugin as PluginEntity
from gateway.entities import Ref, Route, Service
from gateway.plugins.ai_proxy_advanced import (
    AiProxyAdvancedHandler,
    AiProxyAdvancedPlugin,
    Config,
    new_balancer,
)
from gateway.plugins.base import BuildContext, Handler
from gateway.snapshot import Snapshot
from tests.data_plane.proxy_harness import closed_port, serve_proxy
from tests.fakes.openai_server import FakeOpenAI

ALL_STATUSES = ["http_429", "http_500", "http_502", "http_503", "http_504"]
FAILOVER = ["error", "timeout", *ALL_STATUSES, "non_idempotent"]


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class _TestPlugin(AiProxyAdvancedPlugin):
    """ai-proxy-advanced on a controlled clock."""

    def __init__(self, clock: Clock) -> None:
        super().__init__()
        self.clock = clock
        self.handlers: list[AiProxyAdvancedHandler] = []

    def build(self, config: Config, deps: BuildContext) -> Handler:
        balancer = new_balancer(config, self.clock)
        handler = AiProxyAdvancedHandler(config, deps.entity.id, self.clock, balancer=balancer)
        self.handlers.append(handler)
        return handler


def target(fake_url: str, key: str, **extra: Any) -> dict[str, Any]:
    return {
        "route_type": "llm/v1/chat",
        "auth": {"header_name": "Authorization", "header_value": f"Bearer {key}"},
        "model": {
            "provider": "openai",
            "name": "gpt-4o",
            "options": {"upstream_url": fake_url + "/v1/chat/completions"},
        },
        **extra,
    }


@contextlib.asynccontextmanager
async def gateway(
    targets: list[dict[str, Any]], clock: Clock | None = None, **balancer: Any
) -> AsyncIterator[tuple[openai.AsyncOpenAI, _TestPlugin]]:
    plugin = _TestPlugin(clock or Clock())
    service = Service(host="unused.invalid", port=9)
    route = Route(paths=["/openai"], service=Ref(id=service.id))
    entity = PluginEntity(
        name="ai-proxy-advanced", config={"targets": targets, "balancer": balancer}
    )
    snapshot = Snapshot.create(1, (service,), (route,), (entity,))
    async with (
        serve_proxy(snapshot, {plugin.name: plugin}) as url,
        openai.AsyncOpenAI(
            api_key="consumer-key", base_url=url + "/openai", max_retries=0
        ) as client,
    ):
        yield client, plugin


async def chat(client: openai.AsyncOpenAI, text: str = "hi", **extra: Any) -> str:
    answer = await client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": text}], **extra
    )
    return answer.choices[0].message.content or ""


@contextlib.contextmanager
def fakes(*keys: str) -> Any:
    with contextlib.ExitStack() as stack:
        yield [stack.enter_context(FakeOpenAI(api_key=key)) for key in keys]


def counts(*servers: FakeOpenAI) -> list[int]:
    return [len(s.requests) for s in servers]


@pytest.mark.parametrize("status", [500, 429, 503])
async def test_failover_on_status_to_a_healthy_target(status: int) -> None:
    with fakes("sk-a", "sk-b") as (a, b):
        a.queue_response(status, {"error": {"message": "overloaded"}})
        targets = [target(a.url, "sk-a"), target(b.url, "sk-b")]
        async with gateway(targets, failover_criteria=FAILOVER) as (client, _):
            assert await chat(client, "first") == "Hello! You said: first"
        assert counts(a, b) == [1, 1]
        [seen] = b.requests
        # the retry carries the second target's credential, never the first's nor the client's
        assert seen.headers.get_all("authorization") == ["Bearer sk-b"]
        assert seen.json["model"] == "gpt-4o"


async def test_each_attempt_has_only_its_own_target_credentials() -> None:
    with fakes(None, "sk-b") as (a, b):  # type: ignore[arg-type]
        a.queue_response(500, {"error": "down"})
        first = target(a.url, "unused")
        first["auth"] = {"header_name": "X-A-Key", "header_value": "secret-a"}
        second = target(b.url, "sk-b")
        second["auth"] = {"param_name": "key", "param_value": "secret-b", "param_location": "query"}
        async with gateway([first, second], failover_criteria=FAILOVER) as (client, _):
            with pytest.raises(openai.AuthenticationError):  # b wants a bearer key it never gets
                await chat(client)
        [to_a], [to_b] = a.requests, b.requests
        assert to_a.headers.get("x-a-key") == "secret-a"
        assert "authorization" not in to_a.headers  # the consumer key is stripped
        assert "x-a-key" not in to_b.headers and "authorization" not in to_b.headers
        assert to_b.query == "key=secret-b"


async def test_failover_on_read_timeout() -> None:
    with fakes("sk-a", "sk-b") as (a, b):
        a.queue_stall(1)
        targets = [target(a.url, "sk-a"), target(b.url, "sk-b")]
        async with gateway(targets, failover_criteria=FAILOVER, read_timeout=200) as (client, _):
            assert await chat(client, "slow") == "Hello! You said: slow"
        assert counts(a, b) == [1, 1]


async def test_refused_connection_fails_over_with_the_default_criteria() -> None:
    with fakes("sk-b") as (b,):
        dead = f"http://127.0.0.1:{closed_port()}"
        async with gateway([target(dead, "sk-a"), target(b.url, "sk-b")]) as (client, _):
            assert [await chat(client) for _ in range(4)] == ["Hello! You said: hi"] * 4
        assert counts(b) == [4]


async def test_post_is_not_retried_on_statuses_without_non_idempotent() -> None:
    with fakes("sk-a", "sk-b") as (a, b):
        a.queue_response(500, {"error": {"message": "upstream broke"}})
        targets = [target(a.url, "sk-a"), target(b.url, "sk-b")]
        async with gateway(targets, failover_criteria=["error", "timeout", "http_500"]) as (
            client,
            _,
        ):
            with pytest.raises(openai.InternalServerError) as caught:
                await chat(client)
        assert caught.value.body == {"message": "upstream broke"}
        assert counts(a, b) == [1, 0]


async def test_dropped_connection_after_send_needs_non_idempotent() -> None:
    with fakes("sk-a", "sk-b") as (a, b):
        a.queue_drop()
        targets = [target(a.url, "sk-a"), target(b.url, "sk-b")]
        async with gateway(targets) as (client, _):
            with pytest.raises(openai.APIStatusError) as caught:
                await chat(client)
            assert caught.value.status_code == 502
        a.queue_drop()
        async with gateway(targets, failover_criteria=FAILOVER) as (client, _):
            assert await chat(client) == "Hello! You said: hi"
        assert counts(a, b) == [2, 1]


async def test_retries_exhausted_returns_the_last_failure() -> None:
    with fakes("sk-a", "sk-b", "sk-c") as (a, b, c):
        a.queue_response(500, {"error": {"message": "a"}})
        b.queue_response(502, {"error": {"message": "b"}})
        c.queue_response(503, {"error": {"message": "c"}})
        targets = [target(s.url, k) for s, k in ((a, "sk-a"), (b, "sk-b"), (c, "sk-c"))]
        async with gateway(targets, failover_criteria=FAILOVER, retries=1) as (client, _):
            with pytest.raises(openai.APIStatusError) as caught:
                await chat(client)
        assert caught.value.status_code == 502
        assert caught.value.body == {"message": "b"}  # the SDK unwraps OpenAI's "error"
        assert counts(a, b, c) == [1, 1, 0]


async def test_all_targets_timing_out_is_kong_504() -> None:
    with fakes("sk-a", "sk-b") as (a, b):
        a.queue_stall(1)
        b.queue_stall(1)
        targets = [target(a.url, "sk-a"), target(b.url, "sk-b")]
        async with gateway(targets, failover_criteria=FAILOVER, read_timeout=150) as (client, _):
            with pytest.raises(openai.APIStatusError) as caught:
                await chat(client)
        assert caught.value.status_code == 504
        assert counts(a, b) == [1, 1]


async def test_stream_fails_over_before_the_first_byte() -> None:
    with fakes("sk-a", "sk-b") as (a, b):
        a.queue_response(500, {"error": "down"})
        targets = [target(a.url, "sk-a"), target(b.url, "sk-b")]
        async with gateway(targets, failover_criteria=FAILOVER) as (client, _):
            stream = await client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "s"}], stream=True
            )
            text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == "Hello! You said: s"
        assert counts(a, b) == [1, 1]


async def test_circuit_breaker_open_half_open_closed() -> None:
    clock = Clock()
    with fakes("sk-a", "sk-b") as (a, b):
        for _ in range(2):
            a.queue_response(500, {"error": "down"})
        targets = [target(a.url, "sk-a"), target(b.url, "sk-b")]
        async with gateway(
            targets, clock, failover_criteria=FAILOVER, max_fails=2, fail_timeout=5000
        ) as (client, plugin):
            health = plugin.handlers[0].balancer.health
            for _ in range(3):  # a, b, a: both failures of a fail over to b
                assert await chat(client) == "Hello! You said: hi"
            assert counts(a, b) == [2, 3]
            assert health.state(0) == "open"
            for _ in range(4):
                await chat(client)
            assert counts(a, b) == [2, 7]  # a is out
            clock.now += 5.0
            assert health.state(0) == "half_open"
            for _ in range(2):  # the probe reaches a within two picks; it answers: closed
                await chat(client)
            assert counts(a) == [3]
            assert health.state(0) == "closed"
            for _ in range(4):
                await chat(client)
            assert counts(a, b) == [5, 10]


async def test_all_targets_unhealthy_is_500_without_calling_any() -> None:
    with fakes("sk-a", "sk-b") as (a, b):
        a.queue_response(500, {"error": {"message": "a"}})
        b.queue_response(500, {"error": {"message": "b"}})
        targets = [target(a.url, "sk-a"), target(b.url, "sk-b")]
        async with gateway(targets, failover_criteria=FAILOVER, max_fails=1) as (client, _):
            with pytest.raises(openai.InternalServerError) as first:
                await chat(client)
            assert first.value.body == {"message": "b"}  # the last failure, from b
            with pytest.raises(openai.InternalServerError) as second:
                await chat(client)
            body = second.value.body
            assert isinstance(body, dict) and body["message"] == "An unexpected error occurred"
        assert counts(a, b) == [1, 1]


async def test_403_and_404_never_open_the_breaker() -> None:
    with fakes("sk-a") as (a,):
        for _ in range(3):
            a.queue_response(404, {"error": "no such model"})
        async with gateway(
            [target(a.url, "sk-a")], failover_criteria=["http_404", "non_idempotent"], max_fails=1
        ) as (client, plugin):
            for _ in range(3):
                with pytest.raises(openai.NotFoundError):
                    await chat(client)
            assert plugin.handlers[0].balancer.health.state(0) == "closed"
            assert await chat(client) == "Hello! You said: hi"


async def test_priority_groups() -> None:
    with fakes("sk-a", "sk-b", "sk-c") as (a, b, c):
        targets = [
            target(a.url, "sk-a", weight=10),
            target(b.url, "sk-b", weight=10),
            target(c.url, "sk-c", weight=1),
        ]
        async with gateway(targets, algorithm="priority", failover_criteria=FAILOVER) as (
            client,
            _,
        ):
            for _ in range(6):
                await chat(client)
            assert counts(a, b, c) == [3, 3, 0]
            a.queue_response(503, {"error": "a"})
            b.queue_response(503, {"error": "b"})
            assert await chat(client) == "Hello! You said: hi"  # both of the top group failed
        assert counts(a, b, c) == [4, 4, 1]


async def test_consistent_hashing_is_sticky_per_header_value() -> None:
    with fakes("sk-a", "sk-b", "sk-c") as servers:
        targets = [target(s.url, k) for s, k in zip(servers, ("sk-a", "sk-b", "sk-c"), strict=True)]
        async with gateway(targets, algorithm="consistent-hashing", hash_on_header="X-User") as (
            client,
            _,
        ):
            for user in range(12):
                for _ in range(3):
                    await chat(client, f"user-{user}", extra_headers={"X-User": f"u{user}"})
        where: dict[str, set[int]] = {}
        for i, server in enumerate(servers):
            for seen in server.requests:
                where.setdefault(seen.json["messages"][0]["content"], set()).add(i)
        assert len(where) == 12
        assert all(len(owners) == 1 for owners in where.values())
        assert len({next(iter(o)) for o in where.values()}) > 1  # users are spread


async def test_lowest_usage_learns_from_answers() -> None:
    with fakes("sk-a", "sk-b") as (a, b):
        targets = [target(a.url, "sk-a"), target(b.url, "sk-b")]
        async with gateway(targets, algorithm="lowest-usage") as (client, plugin):
            await chat(client, "word " * 1000)  # the fake reports ~2000 tokens for this
            heavy = 0 if counts(a, b) == [1, 0] else 1
            for _ in range(5):
                assert await chat(client) == "Hello! You said: hi"
            lb = plugin.handlers[0].balancer
            assert lb.usage[heavy] > 1000
            assert lb.inflight == [0, 0]
        assert counts(a, b)[heavy] == 1  # all later (small) requests went to the other target
        assert sum(counts(a, b)) == 6


async def test_least_connections_releases_every_attempt() -> None:
    with fakes("sk-a", "sk-b") as (a, b):
        a.queue_response(500, {"error": "a"})
        targets = [target(a.url, "sk-a"), target(b.url, "sk-b")]
        async with gateway(targets, algorithm="least-connections", failover_criteria=FAILOVER) as (
            client,
            plugin,
        ):
            for _ in range(4):
                await chat(client)
            assert plugin.handlers[0].balancer.inflight == [0, 0]
        assert sum(counts(a, b)) == 5
