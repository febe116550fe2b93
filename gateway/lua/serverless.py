"""What pre-function and post-function share (Kong's `_schema.lua` + `_handler.lua`).

- `functions_config_model(plugin_name, class_name)`: the config model with the six phase arrays
  (`certificate`, `rewrite`, `access`, `header_filter`, `body_filter`, `log`; default `[]`; at
  least one non-empty). Every string is compiled on validation; a syntax error is the pydantic
  error `error parsing <plugin_name>: <lua error>` located at `(<phase>, <index>)`.
- `FunctionsPlugin`: a `Plugin` whose `build` compiles every chunk once, in one sandbox per
  plugin instance, and returns a handler overriding only the phases that have code.
- `CompiledFunctions.run(phase, ctx)`: the chunks of a phase in order. A chunk runs on every
  request, unless its first run returns a function: that function then runs immediately and on
  every later request, its upvalues kept for the life of the compiled instance (Kong: "once on
  initialization, with upvalues"). An exit ends the phase and is returned; a Lua error raises
  `LuaRuntimeError`, a blown limit `LuaLimitError` (the pipeline answers Kong's 500).

The `certificate` phase is validated and compiled but never runs: the proxy has no TLS
handshake hook.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, Field, create_model, model_validator
from pydantic_core import PydanticCustomError

from gateway.context import Exit, RequestContext, ResponseHead
from gateway.lua.pdk import Pdk
from gateway.lua.pdk_ngx import output_exit
from gateway.lua.sandbox import LuaError, LuaSandbox, SandboxLimits, check_syntax
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


class _Chunk:
    """One compiled chunk; after its first run, possibly the function it returned."""

    __slots__ = ("fn", "initialized")

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.initialized = False


class CompiledFunctions:
    """The phase arrays of one plugin instance, compiled in their own sandbox."""

    __slots__ = ("_pdk", "_phases", "_sandbox")

    def __init__(
        self,
        plugin_name: str,
        instance_id: str,
        sources: Mapping[str, Sequence[str]],
        limits: SandboxLimits | None = None,
    ) -> None:
        self._sandbox = sandbox = LuaSandbox(limits)
        self._pdk = Pdk(sandbox, plugin_name, instance_id)
        env = self._pdk.globals
        self._phases = {
            phase: [_Chunk(sandbox.compile(source, env)) for source in chunks]
            for phase, chunks in sources.items()
            if chunks
        }

    @property
    def phases(self) -> frozenset[str]:
        """The phases that have at least one chunk."""
        return frozenset(self._phases)

    def run(self, phase: str, ctx: RequestContext, head: ResponseHead | None = None) -> Exit | None:
        """Run the chunks of `phase` for `ctx`; the exit response if one was made."""
        chunks = self._phases.get(phase)
        if not chunks:
            return None
        binding = self._pdk.binding
        binding.bind(ctx, phase, head)
        try:
            for chunk in chunks:
                if self._call(chunk) or binding.exit is not None:
                    break
            if binding.exit is None and binding.ngx_output and phase in ("rewrite", "access"):
                # ngx.say without ngx.exit: what was printed is the response.
                return output_exit(binding)
            return binding.exit
        finally:
            binding.unbind()

    def filter_body(self, ctx: RequestContext, chunk: bytes, eof: bool) -> bytes:
        """Run the body_filter chunks on one response body chunk (`ngx.arg[1]`, `ngx.arg[2]`)."""
        binding = self._pdk.binding
        binding.body_chunk = chunk
        binding.body_eof = eof
        try:
            self.run("body_filter", ctx, ctx.response)
            return binding.body_chunk
        finally:
            binding.body_chunk = b""

    def _call(self, chunk: _Chunk) -> bool:
        """Run one chunk (Kong's two styles); True if it exited."""
        sandbox = self._sandbox
        if chunk.initialized:
            return sandbox.run(chunk.fn).exited
        chunk.initialized = True
        result = sandbox.run(chunk.fn)
        if result.returned_function is None:
            return result.exited
        chunk.fn = result.returned_function
        return sandbox.run(chunk.fn).exited


class _FunctionsHandler(Handler):
    def __init__(self, functions: CompiledFunctions) -> None:
        self._functions = functions


def _phase_methods(functions_phases: frozenset[str]) -> dict[str, Callable[..., Any]]:
    async def rewrite(self: _FunctionsHandler, ctx: RequestContext) -> Exit | None:
        return self._functions.run("rewrite", ctx)

    async def access(self: _FunctionsHandler, ctx: RequestContext) -> Exit | None:
        return self._functions.run("access", ctx)

    def header_filter(self: _FunctionsHandler, ctx: RequestContext, head: ResponseHead) -> None:
        self._functions.run("header_filter", ctx, head)

    def body_filter(self: _FunctionsHandler, ctx: RequestContext, chunk: bytes, eof: bool) -> bytes:
        return self._functions.filter_body(ctx, chunk, eof)

    async def log(self: _FunctionsHandler, ctx: RequestContext) -> None:
        self._functions.run("log", ctx)

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
