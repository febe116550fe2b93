"""The Azure OpenAI driver: OpenAI's formats at a deployment URL with an `api-version` query
argument (Kong's `drivers/azure.lua`)."""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlencode

from gateway.llm.providers.base import UpstreamURL
from gateway.llm.providers.openai import OpenAIDriver

if TYPE_CHECKING:
    from gateway.llm.schema import ModelOptions

_OPERATIONS = {
    "llm/v1/chat": "/chat/completions",
    "llm/v1/completions": "/completions",
    "llm/v1/embeddings": "/embeddings",
}


class AzureDriver(OpenAIDriver):
    name = "azure"

    def default_url(
        self, route_type: str, model: str, options: ModelOptions, stream: bool
    ) -> UpstreamURL | None:
        host = f"{options.azure_instance}.openai.azure.com"
        base = f"/openai/deployments/{options.azure_deployment_id}"
        return UpstreamURL("https", host, 443, base + _OPERATIONS.get(route_type, ""))

    def configure(self, options: ModelOptions, query: str) -> str:
        # Kong: the client's api-version wins, else the configured one; always present.
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(name == "api-version" for name, _ in pairs):
            return query
        if options.azure_api_version is None:
            return query
        extra = urlencode({"api-version": options.azure_api_version})
        return f"{query}&{extra}" if query else extra
