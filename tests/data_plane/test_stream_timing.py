"""Streams are not buffered: over real sockets (uvicorn + ProxyApp, the real `openai` SDK with
its own HTTP client), the first chunk reaches the client long before a slow upstream finishes,
and later chunks arrive one by one as the upstream sends them. Checked for OpenAI SSE (passed
through) and for Anthropic's events (re-framed as OpenAI chunks). Also the async SDK's
concurrent non-streaming chats over real sockets."""

from __future__ import annotations

import asyncio
import gc
import itertools
import statistics
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import openai

from gateway.entities import Plugin as PluginEntity
from gateway.entities import Ref, Route, Service
from gateway.plugins import registry
from gateway.snapshot import Snapshot
from tests.data_plane.proxy_harness import serve_proxy
from tests.fakes.anthropic_server import fake_anthropic
from tests.fakes.openai_server import FakeOpenAI
from tests.gateway.llm.providers.gateway import target

KEY = "sk-provider-key"
DELAY_S = 0.1
"""The fakes' pause after each streamed event."""
PROMPT = "hi"
# The fakes answer "Hello! You said: hi", one word per delta.
REPLY = "Hello! You said: hi"
# When the fakes send the event behind the client's last chunk (the finish reason), in pauses:
OPENAI_LAST = 5  # role chunk, 4 words, *finish chunk*, [DONE]
ANTHROPIC_LAST = 8  # message_start, ping, block start, 4 deltas, block stop, *message_delta*, ...


def _snapshot(config: dict[str, Any]) -> Snapshot:
    service = Service(host="unused.invalid", port=9)
    route = Route(paths=["/llm"], service=Ref(id=service.id))
    plugin = PluginEntity(name="ai-proxy-advanced", config={"targets": [config]})
    return Snapshot.create(1, (service,), (route,), (plugin,))


def _openai_target(fake: FakeOpenAI) -> dict[str, Any]:
    return target(
        "openai",
        "gpt-4o",
        fake.url + "/v1/chat/completions",
        auth={"header_name": "Authorization", "header_value": f"Bearer {KEY}"},
    )


@asynccontextmanager
async def _sdk(config: dict[str, Any]) -> AsyncIterator[openai.AsyncOpenAI]:
    """The async OpenAI SDK (its default HTTP client, real sockets) in front of a real proxy."""
    async with (
        serve_proxy(_snapshot(config), registry()) as url,
        openai.AsyncOpenAI(
            api_key="consumer-key", base_url=f"{url}/llm", max_retries=0, timeout=20
        ) as client,
    ):
        yield client


async def _chunk_times(client: openai.AsyncOpenAI, model: str) -> tuple[list[float], str]:
    """Seconds from the request's start to each chunk's arrival, and the streamed text."""
    # The proxy and the fake run in this process: a full collection inside the timed window
    # (what the earlier tests left) would hold the first chunks back and look like buffering.
    gc.collect()
    started = time.perf_counter()
    stream = await client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": PROMPT}], stream=True
    )
    arrivals: list[float] = []
    text = ""
    async for chunk in stream:
        arrivals.append(time.perf_counter() - started)
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
    return arrivals, text


def _assert_streamed(arrivals: list[float], last_event: int) -> None:
    # The fake pauses DELAY_S after each event, so it sends the last one this late.
    upstream_s = last_event * DELAY_S
    assert arrivals[-1] >= upstream_s * 0.9, arrivals  # the upstream really was slow
    assert arrivals[0] < upstream_s / 2, arrivals
    # Each chunk is flushed as it comes: chunks arrive about DELAY_S apart, not in a burst.
    gaps = [b - a for a, b in itertools.pairwise(arrivals)]
    assert statistics.median(gaps) >= DELAY_S / 2, arrivals


async def test_openai_sse_chunks_arrive_as_the_upstream_sends_them() -> None:
    with FakeOpenAI(api_key=KEY, stream_delay=DELAY_S) as fake:
        async with _sdk(_openai_target(fake)) as client:
            arrivals, text = await _chunk_times(client, "gpt-4o")
        assert fake.requests[-1].json["stream"] is True
    assert text == REPLY
    assert len(arrivals) == OPENAI_LAST + 1  # the SDK does not yield [DONE]
    _assert_streamed(arrivals, OPENAI_LAST)


async def test_reframed_anthropic_chunks_arrive_as_the_upstream_sends_them() -> None:
    with fake_anthropic(api_key=KEY, stream_delay=DELAY_S) as fake:
        config = target(
            "anthropic",
            "claude-sonnet-4-5",
            fake.url + "/v1/messages",
            auth={"header_name": "x-api-key", "header_value": KEY},
            anthropic_version="2023-06-01",
            max_tokens=64,
        )
        async with _sdk(config) as client:
            arrivals, text = await _chunk_times(client, "claude-sonnet-4-5")
        assert fake.requests[-1].path == "/v1/messages"
    assert text == REPLY
    # Re-framed: at least the role chunk, one per word and the finish chunk.
    assert len(arrivals) >= 6, arrivals
    _assert_streamed(arrivals, ANTHROPIC_LAST)


async def test_async_sdk_concurrent_chats_each_get_their_own_answer() -> None:
    with FakeOpenAI(api_key=KEY) as fake:
        async with _sdk(_openai_target(fake)) as client:
            answers = await asyncio.gather(
                *(
                    client.chat.completions.with_raw_response.create(
                        model="gpt-4o", messages=[{"role": "user", "content": f"question {i}"}]
                    )
                    for i in range(8)
                )
            )
        received = fake.requests
    for i, raw in enumerate(answers):
        assert raw.headers["x-kong-llm-model"] == "openai/gpt-4o"
        answer = raw.parse()
        assert answer.choices[0].message.content == f"Hello! You said: question {i}"
        assert answer.usage is not None and answer.usage.prompt_tokens == 2
    assert len(received) == 8
    assert {r.headers.get("authorization") for r in received} == {f"Bearer {KEY}"}
