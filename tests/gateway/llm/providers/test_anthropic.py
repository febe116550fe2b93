"""anthropic through the data plane: the OpenAI SDK in front, the fake Anthropic API behind."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import openai
import pytest

from tests.fakes.anthropic_server import AnthropicBackend, fake_anthropic
from tests.fakes.harness import FakeServer
from tests.gateway.llm.providers.gateway import (
    CONSUMER_KEY,
    WEATHER_PARAMETERS,
    WEATHER_TOOL,
    Gateway,
    gateway,
    target,
)

KEY = "sk-ant-provider"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeServer[AnthropicBackend]]:
    with fake_anthropic(api_key=KEY) as server:
        yield server


def _config(fake: FakeServer[AnthropicBackend], **extra: Any) -> dict[str, Any]:
    config = target(
        "anthropic",
        "claude-sonnet-4-5",
        fake.url + "/v1/messages",
        auth={"header_name": "x-api-key", "header_value": KEY},
        anthropic_version="2023-06-01",
        max_tokens=256,
    )
    config.update(extra)
    return config


@pytest.fixture
async def gw(fake: FakeServer[AnthropicBackend]) -> AsyncIterator[Gateway]:
    async with gateway("ai-proxy", _config(fake)) as g:
        yield g


async def test_chat(gw: Gateway, fake: FakeServer[AnthropicBackend]) -> None:
    before = len(fake.requests)
    raw = await gw.sdk().chat.completions.with_raw_response.create(
        model="claude-sonnet-4-5",
        messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Say hello."},
        ],
    )
    answer = raw.parse()
    assert answer.choices[0].message.content == "Hello! You said: Say hello."
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None and answer.usage.prompt_tokens == 4
    assert raw.headers["x-kong-llm-model"] == "anthropic/claude-sonnet-4-5"
    seen = fake.requests[before]
    assert seen.path == "/v1/messages"
    assert seen.headers.get("anthropic-version") == "2023-06-01"
    assert seen.headers.get("x-api-key") == KEY
    assert not any(CONSUMER_KEY in value for _, value in seen.headers)
    assert seen.json == {
        "model": "claude-sonnet-4-5",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Say hello."}]}],
        "system": "Be brief.",
        "max_tokens": 256,
        "stream": False,
    }
    [fields] = gw.logs
    assert fields["ai.proxy.usage"] == {
        "prompt_tokens": 4,
        "completion_tokens": 5,
        "total_tokens": 9,
        "time_per_token": pytest.approx(fields["ai.proxy.meta"]["llm_latency"] / 5),  # type: ignore[index]
        "cost": (4 * 1 + 5 * 2) / 1e6,
    }
    meta = fields["ai.proxy.meta"]
    assert isinstance(meta, dict)
    assert (meta["provider_name"], meta["request_model"], meta["response_model"]) == (
        "anthropic",
        "claude-sonnet-4-5",
        "claude-sonnet-4-5",
    )
    assert fields["lockgate.llm"] == {
        "provider": "anthropic",
        "request_model": "claude-sonnet-4-5",
        "response_model": "claude-sonnet-4-5",
        "prompt_tokens": 4,
        "completion_tokens": 5,
        "total_tokens": 9,
        "cost": 14e-6,
        "latency_ms": meta["llm_latency"],
        "stream": False,
    }


async def test_stream(gw: Gateway) -> None:
    stream = await gw.sdk().chat.completions.create(
        model="claude-sonnet-4-5",
        messages=[{"role": "user", "content": "Stream it please."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello! You said: Stream it please."
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    usage = chunks[-1].usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens) == (3, 6)
    usage_log = gw.logs[0]["ai.proxy.usage"]
    assert isinstance(usage_log, dict)
    # Counted from the provider's message_start / message_delta events, not estimated.
    assert (usage_log["prompt_tokens"], usage_log["completion_tokens"]) == (3, 6)


async def test_stream_is_openai_sse_ending_with_done(gw: Gateway) -> None:
    body = {"messages": [{"role": "user", "content": "Hi"}], "stream": True}
    async with gw.client.stream("POST", "/llm/chat/completions", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream"
        raw = b"".join([chunk async for chunk in response.aiter_raw()])
    events = [e for e in raw.decode().split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"
    first = json.loads(events[0].removeprefix("data: "))
    assert first["object"] == "chat.completion.chunk"
    assert first["model"] == "claude-sonnet-4-5"
    assert first["id"].startswith("msg_")


async def test_tool_calls_both_ways(gw: Gateway, fake: FakeServer[AnthropicBackend]) -> None:
    client = gw.sdk()
    messages: list[Any] = [{"role": "user", "content": "Paris"}]
    first = await client.chat.completions.create(
        model="claude-sonnet-4-5", messages=messages, tools=[WEATHER_TOOL], tool_choice="required"
    )
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls is not None
    [call] = choice.message.tool_calls
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]
    sent = fake.requests[-1].json
    assert sent["tools"] == [
        {
            "name": "get_weather",
            "input_schema": WEATHER_PARAMETERS,
            "description": "Current weather in a city",
        }
    ]
    assert sent["tool_choice"] == {"type": "any"}

    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "18C and sunny"},
    ]
    second = await client.chat.completions.create(
        model="claude-sonnet-4-5", messages=messages, tools=[WEATHER_TOOL]
    )
    assert second.choices[0].message.content == "Tool said: 18C and sunny"
    turns = fake.requests[-1].json["messages"]
    assert turns[1]["content"] == [
        {"type": "tool_use", "id": call.id, "name": "get_weather", "input": {"city": "Paris"}}
    ]
    assert turns[2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": call.id, "content": "18C and sunny"}],
    }


async def test_streamed_tool_call(gw: Gateway) -> None:
    stream = await gw.sdk().chat.completions.create(
        model="claude-sonnet-4-5",
        messages=[{"role": "user", "content": "Oslo"}],
        tools=[WEATHER_TOOL],
        stream=True,
    )
    chunks = [c async for c in stream]
    calls = [tc for c in chunks if c.choices for tc in c.choices[0].delta.tool_calls or []]
    assert calls[0].function is not None and calls[0].function.name == "get_weather"
    arguments = "".join((tc.function.arguments or "") for tc in calls if tc.function)
    assert json.loads(arguments) == {"city": "Oslo"}
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "tool_calls"


async def test_completions(fake: FakeServer[AnthropicBackend]) -> None:
    config = _config(fake, route_type="llm/v1/completions")
    config["model"]["options"]["upstream_url"] = fake.url + "/v1/complete"
    config["logging"] = {"log_statistics": False}
    async with gateway("ai-proxy", config) as gw:
        answer = await gw.sdk().completions.create(model="claude-sonnet-4-5", prompt="Knock knock")
        assert answer.choices[0].text == " Hello! You said: Knock knock"
        stream = await gw.sdk().completions.create(
            model="claude-sonnet-4-5", prompt="Who is there", stream=True
        )
        text = "".join([c.choices[0].text async for c in stream if c.choices])
        assert text == " Hello! You said: Who is there"
    assert fake.requests[-1].json["prompt"] == "\n\nHuman: Who is there\n\nAssistant:"
    assert fake.requests[-1].json["max_tokens_to_sample"] == 256


async def test_provider_errors_pass_through(
    gw: Gateway, fake: FakeServer[AnthropicBackend]
) -> None:
    overloaded = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    fake.queue_response(529, overloaded)
    response = await gw.client.post(
        "/llm/chat/completions", json={"messages": [{"role": "user", "content": "x"}]}
    )
    assert response.status_code == 529
    assert response.json() == overloaded
    assert "x-kong-llm-model" not in response.headers


async def test_untransformable_200_is_kongs_500(
    gw: Gateway, fake: FakeServer[AnthropicBackend]
) -> None:
    fake.queue_response(200, {"type": "message", "id": "msg_1"})
    with pytest.raises(openai.InternalServerError) as caught:
        await gw.sdk().chat.completions.create(
            model="claude-sonnet-4-5", messages=[{"role": "user", "content": "x"}]
        )
    assert caught.value.body == {
        "message": "transformation failed from type anthropic://llm/v1/chat: "
        "'content' not in anthropic://llm/v1/chat response"
    }


async def test_wrong_provider_key_is_the_providers_401(fake: FakeServer[AnthropicBackend]) -> None:
    config = _config(fake)
    config["auth"] = {"header_name": "x-api-key", "header_value": "wrong"}
    async with gateway("ai-proxy-advanced", {"targets": [config]}) as gw:
        with pytest.raises(openai.AuthenticationError) as caught:
            await gw.sdk().chat.completions.create(
                model="claude-sonnet-4-5", messages=[{"role": "user", "content": "x"}]
            )
    assert caught.value.body == {"type": "authentication_error", "message": "invalid x-api-key"}
