"""What pre-function and post-function share (Kong's `_schema.lua` + `_handler.lua`).

- `functions_config_model(plugin_name, class_name)`: the config model with the six phase arrays
  (`certificate`, `rewrite`, `access`, `header_filter`, `body_filter`, `log`; default `[]`; at
  least one non-empty). Every string is compiled on validation; a syntax error is the pydantic
  error `error parsing <plugin_name>: <lua error>` located at `(<phase>, <index>)`.
- `FunctionsPlugin`: a `Plugin` whose `build` compiles every chunk once per plugin instance
  and returns a handler overriding only the phases that have code.
- `CompiledFunctions`: the chunks of a phase run in order (`phases.PhaseRunner`). A chunk runs
  on every request, unless its first run returns a function: that function then runs
  immediately and on every later request, its upvalues kept for the life of the compiled
  instance (Kong: "once on initialization, with upvalues"). An exit ends the phase and is
  returned; a Lua error raises `LuaRuntimeError`, a blown limit `LuaLimitError` (the pipeline
  answers Kong's 500). The async phases run inline on the event loop while fast and move to a
  worker thread once slow (`offload.AsyncPhases`), so a runaway snippet does not hold up the
  other requests of its data-plane process; the sync phases always run on the loop.

The `certificate` phase is validated and compiled but never runs: the proxy has no TLS
handshake hook.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, create_model, model_validator
from pydantic_core import PydanticCustomError

from gateway.context import Exit, RequestContext, ResponseHead
from gateway.lua.offload import AsyncPhases
from gateway.lua.phases import PhaseRunner
from gateway.lua.sandbox import LuaError, SandboxLimits, check_syntax
from gateway.plugins.base import BuildContext, Handler, Plugin, PluginConfig

PHASES = ("certificate", "rewrite", "access", "header_filter", "body_filter", "log")
_AT_LEAST_ONE = "at least one of these fields must be non-empty: " + ", ".join(
    f"'config.{phase}'" for phase in PHASES
)


class LuaFunctionsConfig(PluginConfig):
    """Phase arrays of Lua chunks. Use `functions_config_model` to get a validating subclass."""

    certificate: list[str] = Field(default_factory=list)
    rewrite: list[str] = Field(default_factory=list)
    access: list[str] = Field(default_factory=list)
    header_filter: list[str] = Field(default_factory=list)
    body_filter: list[str] = Field(default_factory=list)
    log: list[str] = Field(default_factory=list)

    @model_validator(mode="after")
    def _at_least_one(self) -> LuaFunctionsConfig:
        if not any(getattr(self, phase) for phase in PHASES):
            raise PydanticCustomError("at_least_one_of", _AT_LEAST_ONE)
        return self

    def phase_sources(self) -> dict[str, list[str]]:
        return {phase: list(getattr(self, phase)) for phase in PHASES}


def functions_config_model(plugin_name: str, class_name: str) -> type[LuaFunctionsConfig]:
    """The config model of a serverless-functions plugin named `plugin_name`."""

    def compiles(source: str) -> str:
        try:
            check_syntax(source)
        except LuaError as exc:  # a syntax error, or a chunk too big to compile
            raise PydanticCustomError(
                "lua_syntax",
                "error parsing {plugin}: {error}",
                {"plugin": plugin_name, "error": str(exc)},
            ) from None
        return source

    chunks = list[Annotated[str, AfterValidator(compiles)]]
    fields: dict[str, Any] = {phase: (chunks, Field(default_factory=list)) for phase in PHASES}
    return create_model(class_name, __base__=LuaFunctionsConfig, __module__=__name__, **fields)


SYNC_PHASES = frozenset({"header_filter", "body_filter"})
"""Phases the proxy calls synchronously: they always run on the event loop."""


class CompiledFunctions:
    """The phase arrays of one plugin instance, compiled once.

    The async phases (rewrite, access, log; certificate is only compiled) share one runtime,
    run inline or on its worker thread (`offload.AsyncPhases`); the sync phases (header_filter,
    body_filter) have a runtime of their own, always used on the event loop, so that they never
    wait for a call on the worker. Lua values do not cross runtimes: a table one group stores in
    `kong.ctx` reads as a copy in the other (strings, numbers and booleans are shared).
    """

    __slots__ = ("_async", "_sync", "phases", "run_async")

    def __init__(
        self,
        plugin_name: str,
        instance_id: str,
        sources: Mapping[str, Sequence[str]],
        limits: SandboxLimits | None = None,
    ) -> None:
        used = {phase: chunks for phase, chunks in sources.items() if chunks}
        async_sources = {p: c for p, c in used.items() if p not in SYNC_PHASES}
        sync_sources = {p: c for p, c in used.items() if p in SYNC_PHASES}
        self._async = (
            AsyncPhases(PhaseRunner(plugin_name, instance_id, async_sources, limits))
            if async_sources
            else None
        )
        self._sync = (
            PhaseRunner(plugin_name, instance_id, sync_sources, limits) if sync_sources else None
        )
        self.phases = frozenset(used)
        """The phases that have at least one chunk."""
        # The bound method itself, not a wrapper: one coroutine less per call on the hot path.
        self.run_async: Callable[[str, RequestContext], Coroutine[Any, Any, Exit | None]] = (
            self._async.run if self._async is not None else _no_chunks
        )
        """`await run_async(phase, ctx)`: run an async phase for `ctx`, inline while fast, else
        on the worker thread (`AsyncPhases.run`)."""

    @property
    def on_worker(self) -> bool:
        """The async phases were switched to their worker thread (an inline call went slow)."""
        return self._async is not None and self._async.on_worker

    def run(self, phase: str, ctx: RequestContext, head: ResponseHead | None = None) -> Exit | None:
        """Run the chunks of `phase` for `ctx` on this thread with the full budget; the exit
        response if one was made."""
        if phase in SYNC_PHASES:
            return self._sync.run(phase, ctx, head) if self._sync is not None else None
        return self._async.run_inline(phase, ctx, head) if self._async is not None else None

    def filter_body(self, ctx: RequestContext, chunk: bytes, eof: bool) -> bytes:
        """Run the body_filter chunks on one response body chunk (`ngx.arg[1]`, `ngx.arg[2]`)."""
        return self._sync.filter_body(ctx, chunk, eof) if self._sync is not None else chunk


async def _no_chunks(phase: str, ctx: RequestContext) -> Exit | None:
    return None


class _FunctionsHandler(Handler):
    def __init__(self, functions: CompiledFunctions) -> None:
        self._functions = functions


def _phase_methods(functions_phases: frozenset[str]) -> dict[str, Callable[..., Any]]:
    # rewrite/access/log hand back `run_async`'s coroutine rather than awaiting it in one of
    # their own: the pipeline awaits it directly, one coroutine less per phase call.
    def rewrite(self: _FunctionsHandler, ctx: RequestContext) -> Coroutine[Any, Any, Exit | None]:
        return self._functions.run_async("rewrite", ctx)

    def access(self: _FunctionsHandler, ctx: RequestContext) -> Coroutine[Any, Any, Exit | None]:
        return self._functions.run_async("access", ctx)

    def header_filter(self: _FunctionsHandler, ctx: RequestContext, head: ResponseHead) -> None:
        self._functions.run("header_filter", ctx, head)

    def body_filter(self: _FunctionsHandler, ctx: RequestContext, chunk: bytes, eof: bool) -> bytes:
        return self._functions.filter_body(ctx, chunk, eof)

    def log(self: _FunctionsHandler, ctx: RequestContext) -> Coroutine[Any, Any, Exit | None]:
        return self._functions.run_async("log", ctx)  # an exit made in log is ignored

    available: dict[str, Callable[..., Any]] = {
        "rewrite": rewrite,
        "access": access,
        "header_filter": header_filter,
        "body_filter": body_filter,
        "log": log,
    }
    return {name: fn for name, fn in available.items() if name in functions_phases}


@functools.cache
def _handler_class(phases: frozenset[str]) -> type[_FunctionsHandler]:
    # One class per set of phases, so that Handler.overrides() tells the pipeline which phases
    # actually have code (an empty phase costs nothing per request).
    return type("FunctionsHandler", (_FunctionsHandler,), _phase_methods(phases))


def make_handler(functions: CompiledFunctions) -> Handler:
    return _handler_class(functions.phases)(functions)


class FunctionsPlugin(Plugin[LuaFunctionsConfig]):
    """Base of pre-function/post-function: subclasses set name, priority and config_model."""

    allows_consumer_scope: ClassVar[bool] = False
    limits: ClassVar[SandboxLimits] = SandboxLimits()

    def build(self, config: LuaFunctionsConfig, deps: BuildContext) -> Handler:
        functions = CompiledFunctions(
            self.name, deps.entity.id, config.phase_sources(), self.limits
        )
        return make_handler(functions)
