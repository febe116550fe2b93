"""gemini through the data plane: the OpenAI SDK in front, the fake Gemini API behind."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest

from tests.fakes.gemini_server import GeminiBackend, fake_gemini
from tests.fakes.harness import FakeServer
from tests.gateway.llm.providers.gateway import (
    CONSUMER_KEY,
    WEATHER_PARAMETERS,
    WEATHER_TOOL,
    Gateway,
    gateway,
    target,
)

KEY = "AIza-provider"
MODEL = "gemini-2.0-flash"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeServer[GeminiBackend]]:
    with fake_gemini(api_key=KEY) as server:
        yield server


def _config(fake: FakeServer[GeminiBackend], **extra: Any) -> dict[str, Any]:
    config = target(
        "gemini",
        MODEL,
        f"{fake.url}/v1beta/models/{MODEL}:generateContent",
        auth={"param_name": "key", "param_value": KEY, "param_location": "query"},
    )
    config.update(extra)
    return config


@pytest.fixture
async def gw(fake: FakeServer[GeminiBackend]) -> AsyncIterator[Gateway]:
    async with gateway("ai-proxy", _config(fake)) as g:
        yield g


async def test_chat(gw: Gateway, fake: FakeServer[GeminiBackend]) -> None:
    raw = await gw.sdk().chat.completions.with_raw_response.create(
        model=MODEL,
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello."},
        ],
        temperature=0.5,
        max_tokens=100,
    )
    answer = raw.parse()
    assert answer.choices[0].message.content == "Hello! You said: Say hello."
    assert answer.choices[0].finish_reason == "stop"
    assert answer.model == MODEL + "-001"
    assert raw.headers["x-kong-llm-model"] == f"gemini/{MODEL}"
    seen = fake.requests[-1]
    assert seen.path == f"/v1beta/models/{MODEL}:generateContent"
    assert seen.query == f"key={KEY}"
    assert "authorization" not in seen.headers
    assert not any(CONSUMER_KEY in value for _, value in seen.headers)
    assert seen.json == {
        "contents": [{"role": "user", "parts": [{"text": "Say hello."}]}],
        "systemInstruction": {"parts": [{"text": "Be brief."}]},
        "generationConfig": {"maxOutputTokens": 100, "temperature": 0.5},
    }
    usage = gw.logs[0]["ai.proxy.usage"]
    assert isinstance(usage, dict)
    assert (usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (4, 5, 9)
    meta = gw.logs[0]["ai.proxy.meta"]
    assert isinstance(meta, dict)
    assert meta["response_model"] == MODEL + "-001"


async def test_stream_from_a_streamed_json_array(
    gw: Gateway, fake: FakeServer[GeminiBackend]
) -> None:
    stream = await gw.sdk().chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Stream a longer answer now."}],
        stream=True,
    )
    chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello! You said: Stream a longer answer now."
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) >= 4
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    assert fake.requests[-1].path == f"/v1beta/models/{MODEL}:streamGenerateContent"
    usage = gw.logs[0]["ai.proxy.usage"]
    assert isinstance(usage, dict)
    # From the last element's usageMetadata, not estimated.
    assert (usage["prompt_tokens"], usage["completion_tokens"]) == (5, 8)


async def test_tool_calls_both_ways(gw: Gateway, fake: FakeServer[GeminiBackend]) -> None:
    client = gw.sdk()
    messages: list[Any] = [{"role": "user", "content": "Rome"}]
    first = await client.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER_TOOL], tool_choice="auto"
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    [call] = choice.message.tool_calls
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Rome"}  # type: ignore[union-attr]
    sent = fake.requests[-1].json
    assert sent["tools"] == [
        {
            "functionDeclarations": [
                {
                    "name": "get_weather",
                    "description": "Current weather in a city",
                    "parameters": WEATHER_PARAMETERS,
                }
            ]
        }
    ]
    assert sent["toolConfig"] == {"functionCallingConfig": {"mode": "AUTO"}}

    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'},
    ]
    second = await client.chat.completions.create(
        model=MODEL, messages=messages, tools=[WEATHER_TOOL]
    )
    assert second.choices[0].message.content == 'Tool said: {"temp": 21}'
    contents = fake.requests[-1].json["contents"]
    assert contents[1] == {
        "role": "model",
        "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Rome"}}}],
    }
    assert contents[2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "get_weather", "response": {"temp": 21}}}],
    }


async def test_streamed_tool_call(gw: Gateway) -> None:
    stream = await gw.sdk().chat.completions.create(
        model=MODEL,
        messages=[{"role": "user", "content": "Lima"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    chunks = [c async for c in stream]
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert [(tc.function.name, tc.function.arguments) for tc in calls if tc.function] == [
        ("get_weather", '{"city": "Lima"}')
    ]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


async def test_embeddings(fake: FakeServer[GeminiBackend]) -> None:
    config = _config(fake, route_type="llm/v1/embeddings")
    config["model"]["name"] = "text-embedding-004"
    config["model"]["options"]["upstream_url"] = (
        f"{fake.url}/v1beta/models/text-embedding-004:batchEmbedContents"
    )
    async with gateway("ai-proxy", config) as gw:
        result = await gw.sdk().embeddings.create(
            model="text-embedding-004", input=["one two", "three"], encoding_format="float"
        )
    assert [d.embedding for d in result.data] == [[7.0, 2.0, 0.5], [5.0, 1.0, 0.5]]
    assert fake.requests[-1].json["requests"][1] == {
        "model": "models/text-embedding-004",
        "content": {"parts": [{"text": "three"}]},
    }


async def test_provider_errors_pass_through(fake: FakeServer[GeminiBackend]) -> None:
    config = _config(fake)
    config["auth"]["param_value"] = "wrong"
    async with gateway("ai-proxy", config) as gw:
        with pytest.raises(openai.BadRequestError) as caught:
            await gw.sdk().chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "x"}], stream=True
            )
    assert caught.value.body == {
        "code": 400,
        "message": "API key not valid. Please pass a valid API key.",
        "status": "INVALID_ARGUMENT",
    }


async def test_untransformable_200_is_kongs_500(
    gw: Gateway, fake: FakeServer[GeminiBackend]
) -> None:
    fake.queue_response(200, {"promptFeedback": {"blockReason": "SAFETY"}})
    response = await gw.client.post(
        "/llm/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}
    )
    assert response.status_code == 500
    assert response.json() == {
        "error": {
            "message": "transformation failed from type gemini://llm/v1/chat: "
            "'candidates' not in gemini://llm/v1/chat response"
        }
    }
