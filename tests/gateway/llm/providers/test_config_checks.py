"""Provider-specific config checks, with Kong's entity-check messages."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from gateway.plugins.ai_proxy import PLUGIN as AI_PROXY
from gateway.plugins.ai_proxy_advanced import PLUGIN as ADVANCED


def _config(provider: str, route_type: str = "llm/v1/chat", **options: Any) -> dict[str, Any]:
    return {
        "route_type": route_type,
        "model": {"provider": provider, "name": "m", "options": options},
    }


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (_config("anthropic"), "must set 'model.options.anthropic_version' for anthropic provider"),
        (_config("azure"), "must set 'model.options.azure_instance' for azure provider"),
        (
            _config("azure", azure_instance="i"),
            "must set 'model.options.azure_deployment_id' for azure provider",
        ),
        (_config("mistral"), "must set 'model.options.mistral_format' for mistral provider"),
        (_config("llama2"), "must set 'model.options.llama2_format' for llama2 provider"),
        (
            _config("llama2", llama2_format="raw"),
            "must set 'model.options.upstream_url' for self-hosted providers/models",
        ),
        (
            _config("ollama"),
            "must set 'model.options.upstream_url' for self-hosted providers/models",
        ),
        (
            _config("anthropic", "llm/v1/embeddings", anthropic_version="2023-06-01"),
            "route_type 'llm/v1/embeddings' is not supported for provider 'anthropic'",
        ),
        (
            _config("gemini", "llm/v1/completions"),
            "route_type 'llm/v1/completions' is not supported for provider 'gemini'",
        ),
    ],
)
def test_kong_entity_checks(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        AI_PROXY.validate(config)
    assert message in str(caught.value)
    with pytest.raises(ValidationError) as caught:
        ADVANCED.validate({"targets": [config]})
    assert message in str(caught.value)


def test_no_statistics_for_anthropic_completions() -> None:
    config = _config("anthropic", "llm/v1/completions", anthropic_version="2023-06-01")
    AI_PROXY.validate(config)
    config["logging"] = {"log_statistics": True}
    with pytest.raises(ValidationError) as caught:
        AI_PROXY.validate(config)
    assert "anthropic does not support statistics when route_type is llm/v1/completions" in str(
        caught.value
    )


def test_valid_provider_configs() -> None:
    for config in (
        _config("anthropic", anthropic_version="2023-06-01"),
        _config("azure", azure_instance="i", azure_deployment_id="d"),
        _config("mistral", mistral_format="openai"),
        _config("llama2", llama2_format="openai", upstream_url="http://llm:8000/v1/chat"),
        _config("gemini", "llm/v1/embeddings"),
        _config("cohere", "llm/v1/completions"),
        _config("openai", "llm/v1/embeddings"),
    ):
        AI_PROXY.validate(config)
