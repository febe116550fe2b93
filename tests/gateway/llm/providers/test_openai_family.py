"""openai, azure and mistral (openai format) through the data plane, each against its fake:
OpenAI's formats pass through; the endpoint, auth and query differ."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import openai
import pytest

from gateway.llm.providers import driver_for
from gateway.llm.schema import ModelOptions
from tests.fakes.azure_openai_server import AzureOpenAIBackend, fake_azure_openai
from tests.fakes.harness import FakeServer
from tests.fakes.mistral_server import MistralBackend, fake_mistral
from tests.fakes.openai_compat import OpenAICompatBackend, fake_openai
from tests.gateway.llm.providers.gateway import CONSUMER_KEY, WEATHER_TOOL, gateway, target

KEY = "provider-key"
BEARER = {"header_name": "Authorization", "header_value": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def openai_fake() -> Iterator[FakeServer[OpenAICompatBackend]]:
    with fake_openai(api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def azure_fake() -> Iterator[FakeServer[AzureOpenAIBackend]]:
    with fake_azure_openai(api_key=KEY) as server:
        yield server


@pytest.fixture(scope="module")
def mistral_fake() -> Iterator[FakeServer[MistralBackend]]:
    with fake_mistral(api_key=KEY) as server:
        yield server


def _openai(fake: FakeServer[Any], path: str, route_type: str = "llm/v1/chat") -> dict[str, Any]:
    return target("openai", "gpt-4o", fake.url + path, route_type=route_type, auth=BEARER)


async def test_openai_chat_stream_and_usage(openai_fake: FakeServer[OpenAICompatBackend]) -> None:
    async with gateway("ai-proxy", _openai(openai_fake, "/v1/chat/completions")) as gw:
        sdk = gw.sdk()
        answer = await sdk.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Say hello."}]
        )
        assert answer.choices[0].message.content == "Hello! You said: Say hello."
        stream = await sdk.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Stream it."}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
        assert text == "Hello! You said: Stream it."
    seen = openai_fake.requests[-1]
    assert seen.headers.get_all("authorization") == [f"Bearer {KEY}"]
    assert not any(CONSUMER_KEY in value for _, value in seen.headers)
    oneshot, streamed = (entry["ai.proxy.usage"] for entry in gw.logs)
    assert isinstance(oneshot, dict) and isinstance(streamed, dict)
    assert (oneshot["prompt_tokens"], oneshot["completion_tokens"]) == (2, 5)
    # No usage in this stream (no include_usage): Kong's estimates, prompt words x 1.8 and
    # completion characters / 4.
    assert (streamed["prompt_tokens"], streamed["completion_tokens"]) == (4, 7)


async def test_openai_tool_calls(openai_fake: FakeServer[OpenAICompatBackend]) -> None:
    async with gateway("ai-proxy", _openai(openai_fake, "/v1/chat/completions")) as gw:
        sdk = gw.sdk()
        messages: list[Any] = [{"role": "user", "content": "Berlin"}]
        first = await sdk.chat.completions.create(
            model="gpt-4o", messages=messages, tools=[WEATHER_TOOL]
        )
        assert first.choices[0].message.tool_calls is not None
        [call] = first.choices[0].message.tool_calls
        assert json.loads(call.function.arguments) == {"city": "Berlin"}  # type: ignore[union-attr]
        messages += [
            first.choices[0].message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "windy"},
        ]
        second = await sdk.chat.completions.create(
            model="gpt-4o", messages=messages, tools=[WEATHER_TOOL]
        )
        assert second.choices[0].message.content == "Tool said: windy"
        stream = await sdk.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Kyiv"}], tools=[WEATHER_TOOL],
            stream=True,
        )  # fmt: skip
        deltas = [
            tc async for c in stream if c.choices for tc in c.choices[0].delta.tool_calls or []
        ]
        arguments = "".join(tc.function.arguments or "" for tc in deltas if tc.function)
        assert json.loads(arguments) == {"city": "Kyiv"}


async def test_openai_completions(openai_fake: FakeServer[OpenAICompatBackend]) -> None:
    config = _openai(openai_fake, "/v1/completions", "llm/v1/completions")
    async with gateway("ai-proxy", config) as gw:
        answer = await gw.sdk().completions.create(model="gpt-4o", prompt="Once upon")
    assert answer.choices[0].text == "Hello! You said: Once upon"


async def test_openai_embeddings(openai_fake: FakeServer[OpenAICompatBackend]) -> None:
    config = _openai(openai_fake, "/v1/embeddings", "llm/v1/embeddings")
    config["model"]["name"] = "text-embedding-3-small"
    async with gateway("ai-proxy", config) as gw:
        # The SDK asks for base64 by default and decodes it.
        result = await gw.sdk().embeddings.create(
            model="text-embedding-3-small", input=["alpha beta", "gamma"]
        )
    assert [d.embedding for d in result.data] == [[10.0, 2.0, 0.5], [5.0, 1.0, 0.5]]
    assert result.usage.prompt_tokens == 3
    sent = openai_fake.requests[-1].json
    assert sent == {
        "model": "text-embedding-3-small",
        "input": ["alpha beta", "gamma"],
        "encoding_format": "base64",
    }
    usage = gw.logs[0]["ai.proxy.usage"]
    assert isinstance(usage, dict)
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (3, 0, 3)


async def test_openai_errors_pass_through(openai_fake: FakeServer[OpenAICompatBackend]) -> None:
    config = _openai(openai_fake, "/v1/chat/completions")
    config["auth"] = {"header_name": "Authorization", "header_value": "Bearer wrong"}
    async with gateway("ai-proxy", config) as gw:
        with pytest.raises(openai.AuthenticationError) as caught:
            await gw.sdk().chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "x"}], stream=True
            )
    assert isinstance(caught.value.body, dict)
    assert caught.value.body["code"] == "invalid_api_key"
    assert "lockgate.llm" in gw.logs[0] and "ai.proxy.usage" in gw.logs[0]


async def test_azure(azure_fake: FakeServer[AzureOpenAIBackend]) -> None:
    config = target(
        "azure",
        "gpt-4o",
        azure_fake.url + "/openai/deployments/prod-gpt4o/chat/completions",
        auth={"header_name": "api-key", "header_value": KEY},
        azure_instance="lockgate",
        azure_deployment_id="prod-gpt4o",
        azure_api_version="2024-10-21",
    )
    async with gateway("ai-proxy-advanced", {"targets": [config]}) as gw:
        raw = await gw.sdk().chat.completions.with_raw_response.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Hi Azure"}]
        )
        stream = await gw.sdk().chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Stream"}], stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in stream if c.choices])
    assert raw.parse().choices[0].message.content == "Hello! You said: Hi Azure"
    assert raw.headers["x-kong-llm-model"] == "azure/gpt-4o"
    assert text == "Hello! You said: Stream"
    seen = azure_fake.requests[-1]
    assert seen.path == "/openai/deployments/prod-gpt4o/chat/completions"
    assert seen.query == "api-version=2024-10-21"
    assert seen.headers.get("api-key") == KEY
    assert "authorization" not in seen.headers


def test_azure_default_url() -> None:
    options = ModelOptions(azure_instance="acme", azure_deployment_id="d1")
    url = driver_for("azure").default_url("llm/v1/embeddings", "m", options, False)
    assert url is not None
    assert (url.host, url.path) == ("acme.openai.azure.com", "/openai/deployments/d1/embeddings")


async def test_mistral(mistral_fake: FakeServer[MistralBackend]) -> None:
    config = target(
        "mistral",
        "mistral-small-latest",
        mistral_fake.url + "/v1/chat/completions",
        auth=BEARER,
        mistral_format="openai",
        top_k=5,
    )
    async with gateway("ai-proxy", config) as gw:
        answer = await gw.sdk().chat.completions.create(
            model="mistral-small-latest", messages=[{"role": "user", "content": "Bonjour"}]
        )
    assert answer.choices[0].message.content == "Hello! You said: Bonjour"
    # Mistral (like OpenAI) has no top_k: the configured one is not sent.
    assert "top_k" not in mistral_fake.requests[-1].json
