"""Driver transformations not covered end to end: llama2's raw format, URL rules, errors."""

from __future__ import annotations

import json

import pytest

from gateway.llm.providers import driver_for
from gateway.llm.providers.base import StreamState, TransformError
from gateway.llm.request import LLMRequestError, normalize_request
from gateway.llm.schema import ModelOptions, Target
from gateway.llm.upstream import resolve_url


def test_llama2_raw_both_ways() -> None:
    driver = driver_for("llama2", ModelOptions(llama2_format="raw"))
    body = {
        "messages": [
            {"role": "system", "content": "Be terse."},
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Why?"},
        ],
        "max_tokens": 20,
    }
    assert driver.to_format(body, "llama2", "llm/v1/chat") == {
        "inputs": "<s>[INST] <<SYS>>\nBe terse.\n<</SYS>>\n\nHi [/INST] Hello </s>"
        "<s>[INST] Why? [/INST]",
        "parameters": {"max_new_tokens": 20},
        "stream": False,
    }
    answer = [{"generated_text": "<s>[INST] Why? [/INST]  Because. "}]
    parsed = driver.from_format(json.dumps(answer).encode(), "llm/v1/chat", "llama2")
    doc = json.loads(parsed.body)
    assert doc["choices"][0]["message"] == {"role": "assistant", "content": "Because."}
    with pytest.raises(TransformError, match="'generated_text' not in llama2://llm/v1/chat"):
        driver.from_format(b"{}", "llm/v1/chat")
    event = driver.stream_event('{"token": {"text": "Be"}}', "llm/v1/chat", StreamState("llama2"))
    assert event.content == "Be"
    assert event.chunks[0]["choices"][0]["delta"] == {"content": "Be", "role": "assistant"}


def test_default_urls() -> None:
    options = ModelOptions()
    cases = [
        ("openai", "llm/v1/embeddings", False, "api.openai.com", "/v1/embeddings"),
        ("anthropic", "llm/v1/chat", False, "api.anthropic.com", "/v1/messages"),
        ("cohere", "llm/v1/completions", False, "api.cohere.com", "/v1/generate"),
        ("mistral", "llm/v1/chat", False, "api.mistral.ai", "/v1/chat/completions"),
        (
            "gemini",
            "llm/v1/chat",
            True,
            "generativelanguage.googleapis.com",
            "/v1beta/models/m:streamGenerateContent",
        ),
    ]
    for provider, route_type, stream, host, path in cases:
        url = driver_for(provider).default_url(route_type, "m", options, stream)
        assert url is not None and (url.host, url.path) == (host, path)
    vertex = ModelOptions(
        gemini={
            "api_endpoint": "eu-aiplatform.googleapis.com",
            "project_id": "p",
            "location_id": "l",
        }
    )
    url = driver_for("gemini").default_url("llm/v1/chat", "m", vertex, False)
    assert url is not None
    assert url.path == "/v1/projects/p/locations/l/publishers/google/models/m:generateContent"


def test_gemini_upstream_url_streams_through_its_stream_operation() -> None:
    target = Target.model_validate(
        {
            "route_type": "llm/v1/chat",
            "model": {
                "provider": "gemini",
                "name": "g",
                "options": {"upstream_url": "http://gw:8080/v1beta/models/g:generateContent"},
            },
        }
    )
    driver = driver_for("gemini")
    assert resolve_url(target, driver, "g", "/x", stream=True).path.endswith(
        ":streamGenerateContent"
    )
    assert resolve_url(target, driver, "g", "/x").path.endswith(":generateContent")


def test_driver_transform_error_is_kongs_400() -> None:
    target = Target.model_validate(
        {"route_type": "llm/v1/chat", "model": {"provider": "gemini", "name": "gemini-1.0-pro"}}
    )
    body = {"messages": [{"role": "system", "content": "s"}, {"role": "user", "content": "u"}]}
    with pytest.raises(LLMRequestError) as caught:
        normalize_request(body, target, driver_for("gemini"), "allow")
    assert (caught.value.status, caught.value.message) == (
        400,
        "error transforming to gemini://llm/v1/chat",
    )


def test_embeddings_requests() -> None:
    target = Target.model_validate(
        {"route_type": "llm/v1/embeddings", "model": {"provider": "openai", "name": "e"}}
    )
    driver = driver_for("openai")
    request = normalize_request({"input": "a b", "stream": True}, target, driver, "always")
    assert request.body == {"input": "a b", "model": "e"}
    assert request.stream is False
    for body, message in (
        ({"input": []}, "request body doesn't contain valid prompts"),
        (
            {"messages": [{"role": "user", "content": "x"}]},
            "[llm/v1/chat] message format is not compatible with [llm/v1/embeddings] route type",
        ),
    ):
        with pytest.raises(LLMRequestError) as caught:
            normalize_request(body, target, driver, "allow")
        assert caught.value.message == message


@pytest.mark.parametrize(
    ("provider", "options", "route_type", "reason"),
    [
        ("openai", {}, "llm/v1/embeddings", "'data' not in llm/v1/embeddings response"),
        ("anthropic", {}, "llm/v1/chat", "'content' not in anthropic://llm/v1/chat response"),
        ("gemini", {}, "llm/v1/chat", "'candidates' not in gemini://llm/v1/chat response"),
        ("cohere", {}, "llm/v1/chat", "'text' not in cohere://llm/v1/chat response"),
        (
            "cohere",
            {},
            "llm/v1/completions",
            "'generations' not in cohere://llm/v1/completions response",
        ),
        ("ollama", {}, "llm/v1/chat", "'message' not in ollama://llm/v1/chat response"),
        (
            "mistral",
            {"mistral_format": "ollama"},
            "llm/v1/chat",
            "'message' not in mistral://llm/v1/chat response",
        ),
    ],
)
def test_untransformable_answers(
    provider: str, options: dict[str, str], route_type: str, reason: str
) -> None:
    driver = driver_for(provider, ModelOptions.model_validate(options))
    with pytest.raises(TransformError) as caught:
        driver.from_format(b'{"unexpected": true}', route_type, "m")
    assert str(caught.value) == reason
