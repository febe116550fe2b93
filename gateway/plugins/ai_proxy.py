"""ai-proxy (Kong OSS): proxy OpenAI-format LLM requests to one provider.

Kong's ai-proxy is ai-proxy-advanced's pipeline with exactly one target and no balancer
(reference kong-plugins.md §3.1): the same request checks and 400 bodies, provider drivers,
response transformation, streaming and `ai.proxy.*` log fields. This module is that: its config
is one target's fields at the top level, and its handler runs ai-proxy-advanced's handler on a
one-target config. Two differences follow Kong: the Service's timeouts and retries stay in force
(there is no `balancer` record), and there is no target-retry hook.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from pydantic import Field, ValidationError, model_validator

from gateway.context import Exit, RequestContext
from gateway.llm.schema import (
    REFERENCEABLE_AUTH,
    Auth,
    GenaiCategory,
    LlmFormat,
    Logging,
    Model,
    RouteType,
    Target,
)
from gateway.plugins.ai_proxy_advanced import AiProxyAdvancedHandler
from gateway.plugins.ai_proxy_advanced import Config as AdvancedConfig
from gateway.plugins.base import BuildContext, Handler, Plugin, PluginConfig


class Config(PluginConfig):
    """ai-proxy config (Kong 3.12 field names and defaults; entity checks as ai-proxy-advanced's
    targets)."""

    route_type: RouteType
    auth: Auth | None = None
    model: Model
    logging: Logging = Field(default_factory=Logging)
    response_streaming: Literal["allow", "deny", "always"] = "allow"
    # Kong 3.13+ default (1 MiB; 0 = unlimited), as for ai-proxy-advanced.
    max_request_body_size: int = Field(default=1048576, ge=0)
    """Largest client body (bytes) that is read as an LLM request; 0 = unlimited."""
    model_name_header: bool = True
    llm_format: LlmFormat = "openai"
    genai_category: GenaiCategory = "text/generation"

    @model_validator(mode="after")
    def _target_checks(self) -> Config:
        try:
            self.target()
        except ValidationError as exc:
            # Re-raise Kong's entity-check message alone, not pydantic's nested report.
            raise ValueError(exc.errors()[0]["msg"].removeprefix("Value error, ")) from None
        return self

    def target(self) -> Target:
        """This config as the one target of an ai-proxy-advanced config."""
        return Target(
            route_type=self.route_type, auth=self.auth, model=self.model, logging=self.logging
        )

    def advanced(self) -> AdvancedConfig:
        """The equivalent one-target ai-proxy-advanced config."""
        return AdvancedConfig(
            targets=[self.target()],
            response_streaming=self.response_streaming,
            max_request_body_size=self.max_request_body_size,
            model_name_header=self.model_name_header,
        )


class AiProxyHandler(AiProxyAdvancedHandler):
    """ai-proxy-advanced's handler on one target, keeping the Service's timeouts and retries."""

    # Kong's OSS ai-proxy registers no target-retry callback: nginx retries the same target.
    retry = Handler.retry

    def __init__(
        self, config: Config, plugin_id: str, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(config.advanced(), plugin_id, clock)

    async def access(self, ctx: RequestContext) -> Exit | None:
        upstream = ctx.upstream
        service_limits = (
            upstream.connect_timeout_ms,
            upstream.read_timeout_ms,
            upstream.write_timeout_ms,
            upstream.retries,
        )
        exit_ = await super().access(ctx)
        (
            upstream.connect_timeout_ms,
            upstream.read_timeout_ms,
            upstream.write_timeout_ms,
            upstream.retries,
        ) = service_limits
        return exit_


class AiProxyPlugin(Plugin[Config]):
    name = "ai-proxy"
    priority = 770
    referenceable = tuple(f"auth.{field}" for field in REFERENCEABLE_AUTH)
    config_model = Config

    def build(self, config: Config, deps: BuildContext) -> Handler:
        return AiProxyHandler(config, deps.entity.id)


PLUGIN = AiProxyPlugin()
