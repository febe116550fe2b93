"""A Lua 5.4 runtime (lupa) that runs untrusted chunks with Kong's safe globals and hard limits.

Contract:
- `LuaSandbox.compile(source, extra)` loads a text chunk (never bytecode) into a fresh environment
  of Kong's safe globals (`sandbox` mode of `untrusted_lua`) plus `extra` (the PDK's `kong`,
  `ngx`, `require`); a syntax error raises `LuaSyntaxError` whose message is Lua's.
- `LuaSandbox.run(fn)` calls a compiled chunk (or a function it returned) under an instruction
  budget and a CPU-time budget; the runtime as a whole has a memory cap. It returns a `RunResult`
  (finished, possibly with a returned function, or exited through `signal_exit`). A Lua error
  raises `LuaRuntimeError`; a blown budget or the memory cap raises `LuaLimitError`. After either,
  the runtime is usable again.
- Python objects never reach sandboxed code except the callables the PDK hands in: every Python
  attribute lookup from Lua is refused, and lupa's `python` module is removed.

A sandbox is not thread-safe in the sense of interleaving calls: lupa serialises them, and the PDK
binds one request at a time (see pdk.py).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import lupa.lua54 as lupa

from gateway.lua.patterns import install_bounded_strings
from gateway.lua.prelude import PRELUDE
from gateway.plugins.base import PluginRuntimeError

# Status codes returned by the prelude's `run`.
_OK, _EXITED, _LIMITED, _NO_MEMORY, _FAILED = 0, 1, 2, 3, 4


class LuaError(PluginRuntimeError):
    """Base of every error raised by the sandbox."""


class LuaSyntaxError(LuaError):
    """The chunk does not compile; the message is Lua's, e.g. `[string "x ="]:1: ...`."""


class LuaRuntimeError(LuaError):
    """The chunk raised a Lua error (the request gets Kong's 500)."""


class LuaLimitError(LuaError):
    """The chunk exceeded its instruction/CPU budget or the runtime's memory cap."""


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Per-call CPU budget and per-runtime memory cap.

    `max_instructions` counts Lua VM instructions (checked every 1000); `max_seconds` is process
    CPU time (`os.clock`), which also covers time spent in C functions called from Lua as long as
    Lua code runs again afterwards. `max_memory` bounds everything the runtime allocates,
    compiled chunks and state kept in upvalues included.
    """

    max_instructions: int = 50_000_000
    max_seconds: float = 0.25
    max_memory: int = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class RunResult:
    exited: bool
    """The chunk called an exit function (kong.response.exit, ngx.exit...)."""
    returned_function: Any = None
    """The Lua function the chunk returned, if any (Kong's "chunk returns a handler" style)."""


def _deny_attribute(obj: object, name: object, is_setting: bool) -> str:
    raise AttributeError("access to Python attributes is not allowed in the sandbox")


class LuaSandbox:
    """One Lua runtime with the privileged prelude loaded. See the module docstring."""

    __slots__ = ("_compile", "_limits", "_new_env", "_run", "_runtime", "signal_exit")

    def __init__(self, limits: SandboxLimits | None = None) -> None:
        self._limits = limits or SandboxLimits()
        # encoding=None: Lua strings are bytes in Python, so binary bodies survive unchanged.
        self._runtime = lupa.LuaRuntime(
            encoding=None,
            register_eval=False,
            register_builtins=False,
            unpack_returned_tuples=True,
            attribute_filter=_deny_attribute,
            max_memory=self._limits.max_memory,
        )
        self._runtime.execute(b"python = nil; package.loaded.python = nil")
        # Bounded string functions, installed before anything copies the string library.
        install_bounded_strings(self._runtime)
        privileged = self._runtime.execute(PRELUDE)
        self._run = privileged[b"run"]
        self._compile = privileged[b"compile"]
        self._new_env = privileged[b"new_env"]
        self.signal_exit: Any = privileged[b"signal_exit"]
        """Lua function for PDK wrappers: marks the call as exited and unwinds the chunk."""

    @property
    def limits(self) -> SandboxLimits:
        return self._limits

    @property
    def runtime(self) -> Any:
        """The lupa runtime, for building Lua values (tables) on the privileged side."""
        return self._runtime

    def execute_privileged(self, source: bytes) -> Any:
        """Run trusted gateway Lua code (PDK wrappers) with full globals; returns its result."""
        return self._runtime.execute(source)

    def compile(self, source: str, extra: Mapping[bytes, object]) -> Any:
        """Compile `source` in a fresh safe environment extended with `extra`."""
        env = self._new_env(self._runtime.table_from(dict(extra)))
        try:
            fn, err = self._compile(source.encode(), env)
        except lupa.LuaMemoryError as exc:
            raise LuaLimitError("not enough memory") from exc
        if fn is None:
            raise LuaSyntaxError(_text(err))
        return fn

    def run(self, fn: Any) -> RunResult:
        """Call `fn` (no arguments) under the limits. See the module docstring for errors."""
        limits = self._limits
        try:
            status, detail = self._run(fn, limits.max_instructions, limits.max_seconds)
        except lupa.LuaMemoryError as exc:
            self._runtime.gccollect()
            raise LuaLimitError("not enough memory") from exc
        except lupa.LuaError as exc:
            # Only a budget hook firing in the prelude's few instructions after the protected
            # call can get here: treat it as the limit it is.
            raise LuaLimitError(f"limit exceeded: {exc}") from exc
        if status == _OK:
            return RunResult(exited=False, returned_function=detail)
        if status == _EXITED:
            return RunResult(exited=True)
        if status in (_LIMITED, _NO_MEMORY):
            raise LuaLimitError(_text(detail))
        raise LuaRuntimeError(_text(detail))


def _text(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


_checker: LuaSandbox | None = None
_checker_lock = threading.Lock()


def check_syntax(source: str) -> None:
    """Compile `source` without running it (control-plane validation); raises LuaSyntaxError.

    Uses one small shared runtime; compiled functions are dropped immediately.
    """
    global _checker
    with _checker_lock:
        if _checker is None:
            _checker = LuaSandbox(SandboxLimits(max_memory=16 * 1024 * 1024))
        _checker.compile(source, {})
