"""Self-hosted models through the data plane against the fake Ollama server: the `ollama`
provider, and llama2 / mistral in their `ollama` format (NDJSON streams re-framed as SSE)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fakes.harness import FakeServer
from tests.fakes.ollama_server import OllamaBackend, fake_ollama
from tests.gateway.llm.providers.gateway import WEATHER_TOOL, gateway, target


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeServer[OllamaBackend]]:
    with fake_ollama() as server:
        yield server


@pytest.mark.parametrize(
    ("provider", "model", "options"),
    [
        ("ollama", "llama2", {}),
        ("llama2", "llama2", {"llama2_format": "ollama"}),
        ("mistral", "mistral", {"mistral_format": "ollama"}),
    ],
)
async def test_chat_and_stream(
    fake: FakeServer[OllamaBackend], provider: str, model: str, options: dict[str, Any]
) -> None:
    config = target(provider, model, fake.url + "/api/chat", max_tokens=64, **options)
    async with gateway("ai-proxy", config) as gw:
        raw = await gw.sdk().chat.completions.with_raw_response.create(
            model=model, messages=[{"role": "user", "content": "Hi there"}]
        )
        assert raw.parse().choices[0].message.content == "Hello! You said: Hi there"
        assert raw.headers["x-kong-llm-model"] == f"{provider}/{model}"
        assert fake.requests[-1].json == {
            "model": model,
            "stream": False,
            "messages": [{"role": "user", "content": "Hi there"}],
            "options": {"num_predict": 64},
        }
        stream = await gw.sdk().chat.completions.create(
            model=model, messages=[{"role": "user", "content": "Stream now"}], stream=True
        )
        chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello! You said: Stream now"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    streamed = gw.logs[1]["ai.proxy.usage"]
    assert isinstance(streamed, dict)
    # prompt_eval_count / eval_count of the final NDJSON object.
    assert (streamed["prompt_tokens"], streamed["completion_tokens"]) == (2, 5)
    assert gw.logs[1]["lockgate.llm"] == {
        "provider": provider,
        "request_model": model,
        "response_model": model,
        "prompt_tokens": 2,
        "completion_tokens": 5,
        "total_tokens": 7,
        "cost": (2 * 1 + 5 * 2) / 1e6,
        "latency_ms": gw.logs[1]["lockgate.llm"]["latency_ms"],  # type: ignore[index]
        "stream": True,
    }


async def test_tool_call(fake: FakeServer[OllamaBackend]) -> None:
    async with gateway("ai-proxy", target("ollama", "llama2", fake.url + "/api/chat")) as gw:
        answer = await gw.sdk().chat.completions.create(
            model="llama2", messages=[{"role": "user", "content": "Quito"}], tools=[WEATHER_TOOL]
        )
    assert answer.choices[0].finish_reason == "tool_calls"
    assert answer.choices[0].message.tool_calls is not None
    [call] = answer.choices[0].message.tool_calls
    assert json.loads(call.function.arguments) == {"city": "Quito"}  # type: ignore[union-attr]


async def test_completions_and_embeddings(fake: FakeServer[OllamaBackend]) -> None:
    completions = target(
        "llama2", "llama2", fake.url + "/api/generate", route_type="llm/v1/completions",
        llama2_format="ollama",
    )  # fmt: skip
    async with gateway("ai-proxy", completions) as gw:
        answer = await gw.sdk().completions.create(model="llama2", prompt="Write")
        stream = await gw.sdk().completions.create(model="llama2", prompt="Go on", stream=True)
        text = "".join([c.choices[0].text async for c in stream if c.choices])
    assert answer.choices[0].text == "Hello! You said: Write"
    assert text == "Hello! You said: Go on"
    embeddings = target("ollama", "llama2", fake.url + "/api/embed", route_type="llm/v1/embeddings")
    async with gateway("ai-proxy", embeddings) as gw:
        result = await gw.sdk().embeddings.create(
            model="llama2", input="a b c", encoding_format="float"
        )
    assert result.data[0].embedding == [5.0, 3.0, 0.5]


async def test_unknown_model_passes_through(fake: FakeServer[OllamaBackend]) -> None:
    async with gateway("ai-proxy", target("ollama", "phi3", fake.url + "/api/chat")) as gw:
        response = await gw.client.post(
            "/llm/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}
        )
    assert response.status_code == 404
    assert response.json() == {"error": 'model "phi3" not found, try pulling it first'}
