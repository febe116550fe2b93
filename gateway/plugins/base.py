"""The plugin contract.

A plugin is one module with one `Plugin` subclass: `name`, `priority`, a pydantic `config_model`
(validated on the control plane at write time; its JSON Schema drives the UI form) and `build`,
run once per snapshot on the data plane, which returns a `Handler` holding everything compiled.

Handler phases mirror Kong's: `rewrite` (global instances only), `access`, `header_filter`,
`body_filter`, `log`. `rewrite`/`access` return an `Exit` to short-circuit (later access handlers
are skipped; response phases still run for every collected plugin) or None to continue. A raised
exception becomes Kong's 500 "An unexpected error occurred".
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict

from gateway.context import Exit, RequestContext, ResponseHead
from gateway.credentials import CredentialLookup
from gateway.entities import Plugin as PluginEntity
from gateway.snapshot import Snapshot


class PluginConfig(BaseModel):
    """Base of every plugin's config model: unknown fields are errors, as in Kong."""

    model_config = ConfigDict(extra="forbid", frozen=True)


ConfigT = TypeVar("ConfigT", bound=PluginConfig)


@dataclass(frozen=True, slots=True)
class BuildContext:
    """What `build` may use besides the config: the snapshot and the data plane's services."""

    snapshot: Snapshot
    credentials: CredentialLookup
    entity: PluginEntity


class Handler:
    """Compiled per-snapshot plugin instance. Override only the phases the plugin uses;
    the pipeline calls only overridden phases."""

    async def rewrite(self, ctx: RequestContext) -> Exit | None:
        return None

    async def access(self, ctx: RequestContext) -> Exit | None:
        return None

    def header_filter(self, ctx: RequestContext, head: ResponseHead) -> None:
        return None

    def body_filter(self, ctx: RequestContext, chunk: bytes, eof: bool) -> bytes:
        """Transform one response body chunk. With `ctx.upstream.buffer_response` the whole
        body arrives as one chunk with eof=True."""
        return chunk

    async def log(self, ctx: RequestContext) -> None:
        return None

    @classmethod
    def overrides(cls, phase: str) -> bool:
        """Whether this handler class implements `phase` (so the pipeline can skip no-ops)."""
        return getattr(cls, phase) is not getattr(Handler, phase)


class Plugin(ABC, Generic[ConfigT]):
    name: ClassVar[str]
    priority: ClassVar[int]
    config_model: ClassVar[type[PluginConfig]]
    allows_consumer_scope: ClassVar[bool] = True
    """False for plugins Kong marks `no_consumer` (key-auth, pre-function)."""
    version: ClassVar[str] = "1.0.0"

    def validate(self, config: dict[str, object]) -> ConfigT:
        """Validate and fill defaults; raises pydantic.ValidationError."""
        return self.config_model.model_validate(config)  # type: ignore[return-value]

    @abstractmethod
    def build(self, config: ConfigT, deps: BuildContext) -> Handler:
        """Compile a handler for one plugin instance of one snapshot."""
