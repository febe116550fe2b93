"""Provider drivers by Kong provider name.

A provider is supported once it has a driver here; the config schema accepts exactly these
names and rejects Kong's other provider names with a clear "not supported yet" error.
mistral and llama2 have one driver per wire format, chosen by `model.options`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from gateway.llm.providers.anthropic import AnthropicDriver
from gateway.llm.providers.azure import AzureDriver
from gateway.llm.providers.base import Driver
from gateway.llm.providers.cohere import CohereDriver
from gateway.llm.providers.gemini import GeminiDriver
from gateway.llm.providers.llama2 import Llama2OllamaDriver, Llama2OpenAIDriver, Llama2RawDriver
from gateway.llm.providers.mistral import MistralDriver, MistralOllamaDriver
from gateway.llm.providers.ollama import OllamaDriver
from gateway.llm.providers.openai import OpenAIDriver

if TYPE_CHECKING:
    from gateway.llm.schema import ModelOptions

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
    "ollama",
)
"""Every provider name Kong's ai-proxy-advanced schema accepts (up to 3.14) that Lockgate knows."""

DRIVERS: Mapping[str, Driver] = {
    "openai": OpenAIDriver(),
    "azure": AzureDriver(),
    "anthropic": AnthropicDriver(),
    "cohere": CohereDriver(),
    "mistral": MistralDriver(),
    "llama2": Llama2OpenAIDriver(),
    "gemini": GeminiDriver(),
    "ollama": OllamaDriver(),
}
"""The default driver of each provider (mistral and llama2: their `openai` format)."""

_FORMAT_DRIVERS: Mapping[tuple[str, str], Driver] = {
    ("mistral", "ollama"): MistralOllamaDriver(),
    ("llama2", "ollama"): Llama2OllamaDriver(),
    ("llama2", "raw"): Llama2RawDriver(),
}

SUPPORTED_PROVIDERS = tuple(DRIVERS)


def driver_for(provider: str, options: ModelOptions | None = None) -> Driver:
    """The driver of a supported provider, in the wire format `options` selects
    (`mistral_format`, `llama2_format`); KeyError for any other name (config validation
    guarantees a validated target's provider is supported)."""
    if options is not None:
        fmt: str | None = options.mistral_format if provider == "mistral" else None
        if provider == "llama2":
            fmt = options.llama2_format
        if fmt is not None and (provider, fmt) in _FORMAT_DRIVERS:
            return _FORMAT_DRIVERS[(provider, fmt)]
    return DRIVERS[provider]
