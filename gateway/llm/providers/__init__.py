"""Provider drivers by Kong provider name.

A provider is supported once it has a driver here; the config schema accepts exactly these
names and rejects Kong's other provider names with a clear "not supported yet" error.
"""

from __future__ import annotations

from collections.abc import Mapping

from gateway.llm.providers.base import Driver
from gateway.llm.providers.openai import OpenAIDriver

KNOWN_PROVIDERS = (
    "openai",
    "azure",
    "anthropic",
    "cohere",
    "mistral",
    "llama2",
    "gemini",
    "bedrock",
    "huggingface",
)
"""Every provider name Kong 3.12's ai-proxy-advanced schema accepts."""

DRIVERS: Mapping[str, Driver] = {"openai": OpenAIDriver()}

SUPPORTED_PROVIDERS = tuple(DRIVERS)


def driver_for(provider: str) -> Driver:
    """The driver of a supported provider; KeyError for any other name (config validation
    guarantees a validated target's provider is supported)."""
    return DRIVERS[provider]
