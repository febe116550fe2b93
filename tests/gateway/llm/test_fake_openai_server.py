"""The fake OpenAI server, exercised with the real openai SDK pointed straight at it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.fakes.openai_server import FakeOpenAI


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key="sk-up") as server:
        yield server


def _client(fake: FakeOpenAI, key: str = "sk-up") -> openai.OpenAI:
    return openai.OpenAI(api_key=key, base_url=fake.url + "/v1", max_retries=0)


def test_chat_completion_echoes_the_last_user_message(fake: FakeOpenAI) -> None:
    with _client(fake) as client:
        answer = client.chat.completions.create(
            model="gpt-4o",
            messages=[
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "What is 2+2?"},
            ],
        )
    assert answer.object == "chat.completion"
    assert answer.id.startswith("chatcmpl-")
    assert answer.model == "gpt-4o"
    assert answer.choices[0].message.role == "assistant"
    assert answer.choices[0].message.content == "Hello! You said: What is 2+2?"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    # word counts: "be brief" + "What is 2+2?" = 5; "Hello! You said: What is 2+2?" = 6
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (5, 6)
    assert answer.usage.total_tokens == 11

    [seen] = fake.requests
    assert (seen.method, seen.path) == ("POST", "/v1/chat/completions")
    assert seen.headers.get("authorization") == "Bearer sk-up"
    assert seen.json["model"] == "gpt-4o"


def test_chat_stream_with_usage(fake: FakeOpenAI) -> None:
    with _client(fake) as client:
        stream = client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "stream please"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        chunks = list(stream)
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Hello! You said: stream please"
    assert chunks[0].choices[0].delta.role == "assistant"
    finals = [c.choices[0].finish_reason for c in chunks if c.choices]
    assert finals[-1] == "stop"
    assert chunks[-1].choices == []
    assert chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 2 + 5


def test_stream_without_include_usage_has_no_usage_chunk(fake: FakeOpenAI) -> None:
    with _client(fake) as client:
        chunks = list(
            client.chat.completions.create(
                model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True
            )
        )
    assert all(c.usage is None and c.choices for c in chunks)


def test_raw_sse_framing_ends_with_done(fake: FakeOpenAI) -> None:
    response = httpx.post(
        fake.url + "/v1/chat/completions",
        headers={"Authorization": "Bearer sk-up"},
        json={"model": "m", "messages": [{"role": "user", "content": "x"}], "stream": True},
    )
    assert response.headers["content-type"].startswith("text/event-stream")
    events = response.text.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    assert all(e.startswith("data: {") for e in events[:-2])


def test_completions_sync_and_stream(fake: FakeOpenAI) -> None:
    with _client(fake) as client:
        answer = client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi")
        chunks = list(
            client.completions.create(model="gpt-3.5-turbo-instruct", prompt="Say hi", stream=True)
        )
    assert answer.object == "text_completion"
    assert answer.choices[0].text == "Hello! You said: Say hi"
    assert "".join(c.choices[0].text for c in chunks) == "Hello! You said: Say hi"
    assert fake.requests[0].path == "/v1/completions"


def test_wrong_key_is_401_with_openai_error_body(fake: FakeOpenAI) -> None:
    with (
        _client(fake, key="sk-wrong-key") as client,
        pytest.raises(openai.AuthenticationError) as caught,
    ):
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
    assert caught.value.status_code == 401
    assert caught.value.code == "invalid_api_key"

    response = httpx.post(fake.url + "/v1/chat/completions", json={"model": "m"})
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_unknown_argument_is_rejected_like_openai(fake: FakeOpenAI) -> None:
    response = httpx.post(
        fake.url + "/v1/chat/completions",
        headers={"Authorization": "Bearer sk-up"},
        json={"model": "m", "messages": [{"role": "user", "content": "x"}], "top_k": 3},
    )
    assert response.status_code == 400
    assert response.json()["error"]["message"] == ("Unrecognized request argument supplied: top_k")


def test_queued_response_is_served_once_and_request_recorded(fake: FakeOpenAI) -> None:
    fake.queue_response(429, {"error": {"message": "slow down"}}, {"Retry-After": "1"})
    first = httpx.post(fake.url + "/v1/chat/completions?x=1", json={"a": 1})
    second = httpx.post(fake.url + "/v1/chat/completions", json={"a": 1})
    assert (first.status_code, first.json(), first.headers["retry-after"]) == (
        429,
        {"error": {"message": "slow down"}},
        "1",
    )
    assert second.status_code == 401
    assert fake.requests[0].query == "x=1"
    assert fake.requests[0].json == {"a": 1}


def test_no_key_configured_accepts_any_caller() -> None:
    with FakeOpenAI() as fake, _client(fake, key="anything") as client:
        answer = client.chat.completions.create(
            model="m", messages=[{"role": "user", "content": "ok"}]
        )
    assert answer.choices[0].message.content == "Hello! You said: ok"


def test_runs_as_a_process() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.openai_server", "--port", "0", "--api-key", "k"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline().strip()
        assert line.startswith("listening on http://127.0.0.1:")
        url = line.removeprefix("listening on ")
        response = httpx.post(
            url + "/v1/chat/completions",
            headers={"Authorization": "Bearer k"},
            json={"model": "m", "messages": [{"role": "user", "content": "proc"}]},
        )
        assert response.json()["choices"][0]["message"]["content"] == "Hello! You said: proc"
    finally:
        proc.terminate()
        assert proc.wait(10) == 0
        if proc.stdout is not None:
            proc.stdout.close()
