"""Mistral: La Plateforme's OpenAI-compatible API (`mistral_format: openai`), or a Mistral model
served by Ollama (`mistral_format: ollama`) (Kong's `drivers/mistral.lua`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.llm.providers.base import UpstreamURL
from gateway.llm.providers.ollama import OllamaDriver
from gateway.llm.providers.openai import PATHS, OpenAIDriver

if TYPE_CHECKING:
    from gateway.llm.schema import ModelOptions


class MistralDriver(OpenAIDriver):
    name = "mistral"
    route_types = frozenset({"llm/v1/chat", "llm/v1/embeddings", "preserve"})

    def default_url(
        self, route_type: str, model: str, options: ModelOptions, stream: bool
    ) -> UpstreamURL | None:
        return UpstreamURL("https", "api.mistral.ai", 443, PATHS.get(route_type, "/"))


class MistralOllamaDriver(OllamaDriver):
    name = "mistral"
