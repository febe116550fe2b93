"""The plugin contract.

A plugin is one module with one `Plugin` subclass: `name`, `priority`, a pydantic `config_model`
(validated on the control plane at write time; its JSON Schema drives the UI form) and `build`,
run once per snapshot on the data plane, which returns a `Handler` holding everything compiled.

Handler phases mirror Kong's: `rewrite` (global instances only), `access`, `header_filter`,
`body_filter`, `log`. `rewrite`/`access` return an `Exit` to short-circuit (later access handlers
are skipped; response phases still run for every collected plugin) or None to continue. A raised
exception becomes Kong's 500 "An unexpected error occurred".

One optional hook sits between access and the response phases: `retry`, Kong's
`kong.service.set_target_retry_callback`. The proxy calls it after a failed upstream attempt and
before any byte of that attempt reached the client (see `Handler.retry`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import ClassVar, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from gateway.context import Exit, RequestContext, ResponseHead
from gateway.credentials import CredentialLookup
from gateway.entities import Plugin as PluginEntity
from gateway.snapshot import Snapshot


class PluginRuntimeError(Exception):
    """An expected failure of a plugin while serving a request (a user's Lua error, a budget
    exceeded): the client gets Kong's 500 and the log gets one line, not a traceback."""


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


FailureKind = Literal["error", "timeout", "invalid_header", "status"]


@dataclass(frozen=True, slots=True)
class UpstreamFailure:
    """One failed upstream attempt, as the proxy saw it.

    `kind` follows nginx's `proxy_next_upstream` words: `error` (connection refused/reset or
    closed before a response), `timeout` (connect or read timer), `invalid_header` (a response
    that is not valid HTTP) or `status` (a response head with `status` >= 400 arrived; its body
    is still unread). `sent` is False only when the request certainly never reached the upstream
    (the connection could not be opened), which makes even a POST safe to send elsewhere.
    """

    kind: FailureKind
    status: int = 0
    sent: bool = True


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

    async def retry(self, ctx: RequestContext, failure: UpstreamFailure) -> bool:
        """Decide whether the proxy tries again after `failure`; default: never.

        Called after a connection error, a timeout, an invalid response or a response head with
        status >= 400, before header_filter and before anything reached the client. To retry,
        re-target `ctx.upstream` (and the upstream request headers) and return True; the proxy
        then discards the failed response unread and sends the request again. Returning False
        lets the failure through: a status failure is answered as usual, a connection error or
        timeout with Kong's 502/504. The first handler returning True wins. When any collected
        handler overrides this hook, the proxy makes exactly one connection attempt per try
        (`ctx.upstream.retries` is not spent on same-host reconnects): the hook owns retries.
        """
        return False

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
    referenceable: ClassVar[tuple[str, ...]] = ()
    """Config fields that may hold a vault reference (Kong's `referenceable`), resolved on the
    data plane before `validate` (gateway/vault.py): dotted names, `name[]` for every element."""

    def validate(self, config: dict[str, object]) -> ConfigT:
        """Validate and fill defaults; raises pydantic.ValidationError."""
        return self.config_model.model_validate(config)  # type: ignore[return-value]

    @abstractmethod
    def build(self, config: ConfigT, deps: BuildContext) -> Handler:
        """Compile a handler for one plugin instance of one snapshot."""
