"""cohere through the data plane: the OpenAI SDK in front, the fake Cohere v1 API behind."""

from __future__ import annotations

from collections.abc import Iterator

import openai
import pytest

from tests.fakes.cohere_server import CohereBackend, fake_cohere
from tests.fakes.harness import FakeServer
from tests.gateway.llm.providers.gateway import gateway, target

KEY = "co-provider"
AUTH = {"header_name": "Authorization", "header_value": f"Bearer {KEY}"}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeServer[CohereBackend]]:
    with fake_cohere(api_key=KEY) as server:
        yield server


async def test_chat_and_stream(fake: FakeServer[CohereBackend]) -> None:
    config = target("cohere", "command-r", fake.url + "/v1/chat", auth=AUTH, top_p=0.9)
    async with gateway("ai-proxy", config) as gw:
        answer = await gw.sdk().chat.completions.create(
            model="command-r",
            messages=[
                {"role": "system", "content": "Be kind."},
                {"role": "user", "content": "Hi"},
                {"role": "assistant", "content": "Hello"},
                {"role": "user", "content": "How are you?"},
            ],
        )
        assert answer.choices[0].message.content == "Hello! You said: How are you?"
        assert fake.requests[-1].json == {
            "model": "command-r",
            "stream": False,
            "message": "How are you?",
            "chat_history": [
                {"role": "SYSTEM", "message": "Be kind."},
                {"role": "USER", "message": "Hi"},
                {"role": "CHATBOT", "message": "Hello"},
            ],
            "p": 0.9,
        }
        stream = await gw.sdk().chat.completions.create(
            model="command-r", messages=[{"role": "user", "content": "Stream please"}], stream=True
        )
        chunks = [c async for c in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello! You said: Stream please"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    oneshot, streamed = (entry["ai.proxy.usage"] for entry in gw.logs)
    assert isinstance(oneshot, dict) and isinstance(streamed, dict)
    # meta.billed_units, also from the stream-end event.
    assert (oneshot["prompt_tokens"], oneshot["completion_tokens"]) == (7, 6)
    assert (streamed["prompt_tokens"], streamed["completion_tokens"]) == (2, 5)


async def test_completions(fake: FakeServer[CohereBackend]) -> None:
    config = target(
        "cohere", "command", fake.url + "/v1/generate", route_type="llm/v1/completions", auth=AUTH
    )
    async with gateway("ai-proxy", config) as gw:
        answer = await gw.sdk().completions.create(model="command", prompt="Tell me")
        stream = await gw.sdk().completions.create(model="command", prompt="More", stream=True)
        text = "".join([c.choices[0].text async for c in stream if c.choices])
    assert answer.choices[0].text == "Hello! You said: Tell me"
    assert text == "Hello! You said: More"


async def test_errors_pass_through(fake: FakeServer[CohereBackend]) -> None:
    config = target(
        "cohere", "command-r", fake.url + "/v1/chat", auth={**AUTH, "header_value": "x"}
    )
    async with gateway("ai-proxy", config) as gw:
        with pytest.raises(openai.AuthenticationError) as caught:
            await gw.sdk().chat.completions.create(
                model="command-r", messages=[{"role": "user", "content": "x"}]
            )
    assert caught.value.response.json() == {"message": "invalid api token"}
