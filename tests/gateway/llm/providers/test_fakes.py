"""The fake providers refuse what the real APIs refuse, so a wrong transformation fails."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from tests.fakes.anthropic_server import fake_anthropic
from tests.fakes.cohere_server import fake_cohere
from tests.fakes.gemini_server import fake_gemini
from tests.fakes.harness import FakeServer
from tests.fakes.ollama_server import fake_ollama
from tests.fakes.openai_compat import fake_openai

ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01"}
MESSAGES = [{"role": "user", "content": "x"}]


@pytest.mark.parametrize(
    ("make", "path", "headers", "body", "status", "needle"),
    [
        (fake_anthropic, "/v1/messages", {}, {"model": "c", "max_tokens": 5, "messages": MESSAGES},
         400, "anthropic-version: header is required"),
        (fake_anthropic, "/v1/messages", ANTHROPIC_HEADERS, {"model": "c", "messages": MESSAGES},
         400, "max_tokens: Field required"),
        (fake_anthropic, "/v1/messages", ANTHROPIC_HEADERS,
         {"model": "c", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]},
         400, 'Input should be "user" or "assistant"'),
        (fake_anthropic, "/v1/messages", ANTHROPIC_HEADERS,
         {"model": "c", "max_tokens": 5, "messages": MESSAGES, "n": 1},
         400, "n: Extra inputs are not permitted"),
        (fake_gemini, "/v1beta/models/g:generateContent", {},
         {"contents": [{"role": "assistant", "parts": [{"text": "x"}]}]},
         400, "Please use a valid role: user, model."),
        (fake_gemini, "/v1beta/models/g:generateContent", {},
         {"contents": [{"role": "user", "parts": [{"text": "x"}]}], "messages": []},
         400, 'Unknown name "messages"'),
        (fake_cohere, "/v1/chat", {}, {"model": "c", "messages": MESSAGES},
         400, "parameter messages is not a valid field"),
        (fake_ollama, "/api/chat", {}, {"messages": MESSAGES}, 400, "model is required"),
        (fake_openai, "/v1/chat/completions", {}, {"model": "g", "messages": MESSAGES, "top_k": 3},
         400, "Unrecognized request argument supplied: top_k"),
    ],
)  # fmt: skip
def test_malformed_requests_are_refused(
    make: Callable[[], FakeServer[Any]],
    path: str,
    headers: dict[str, str],
    body: dict[str, Any],
    status: int,
    needle: str,
) -> None:
    with make() as fake:
        response = httpx.post(fake.url + path, json=body, headers=headers, timeout=5)
    assert response.status_code == status
    assert needle in json.dumps(response.json(), ensure_ascii=False).replace('\\"', '"')


def test_runs_as_a_process() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "tests.fakes.anthropic_server", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            line = process.stdout.readline()
            assert line.startswith("listening on http://127.0.0.1:")
            response = httpx.post(
                line.split()[-1] + "/v1/messages",
                json={"model": "c", "max_tokens": 5, "messages": MESSAGES},
                headers=ANTHROPIC_HEADERS,
                timeout=5,
            )
        finally:
            process.terminate()
            process.wait(10)
    assert response.json()["content"] == [{"type": "text", "text": "Hello! You said: x"}]
