"""A Lua 5.4 runtime (lupa) that runs untrusted chunks with Kong's safe globals and hard limits.

Contract:
- `LuaSandbox.compile(source, extra)` loads a text chunk (never bytecode) into a fresh environment
  of Kong's safe globals (`sandbox` mode of `untrusted_lua`) plus `extra` (the PDK's `kong`,
  `ngx`, `require`); a syntax error raises `LuaSyntaxError` whose message is Lua's.
- `LuaSandbox.run(fn, inline=False, may_move=False)` calls a compiled chunk (or a function it
  returned) under an instruction budget and a CPU-time budget (CPU time of the calling thread);
  the runtime as a whole has a memory cap. It returns a `RunResult` (finished, possibly with a
  returned function, or exited through `signal_exit`). A Lua error raises `LuaRuntimeError`; a
  blown budget or the memory cap raises `LuaLimitError`. After either, the runtime is usable
  again.
- Inline calls (`inline=True`, made on the event loop) watch `SandboxLimits.inline_seconds`: a
  call that passes it sets `went_slow` for good. With `may_move=True` as well, such a call of a
  compiled chunk stops at the threshold with `LuaMoved` if running it again is safe: its
  environment never held state (no global or library table was ever written) and the call has
  not touched the request, the response or `kong.ctx` (see `touch` in the prelude). Otherwise
  it carries on to its full budget.
- Python objects never reach sandboxed code except the callables the PDK hands in: every Python
  attribute lookup from Lua is refused, and lupa's `python` module is removed.

A sandbox is not thread-safe in the sense of interleaving calls: lupa serialises them, and the PDK
binds one request at a time (see pdk.py); callers using it from several threads hold a lock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import lupa.lua54 as lupa

from gateway.lua.patterns import install_bounded_strings
from gateway.lua.prelude import PRELUDE
from gateway.plugins.base import PluginRuntimeError

# Status codes returned by the prelude's `run`.
_OK, _EXITED, _LIMITED, _NO_MEMORY, _FAILED, _MOVED = 0, 1, 2, 3, 4, 5


class LuaError(PluginRuntimeError):
    """Base of every error raised by the sandbox."""


class LuaSyntaxError(LuaError):
    """The chunk does not compile; the message is Lua's, e.g. `[string "x ="]:1: ...`."""


class LuaRuntimeError(LuaError):
    """The chunk raised a Lua error (the request gets Kong's 500)."""


class LuaLimitError(LuaError):
    """The chunk exceeded its instruction/CPU budget or the runtime's memory cap."""


class LuaMoved(Exception):
    """An inline call passed the inline threshold untouched and was stopped: run it again on a
    worker thread. Never reaches the pipeline."""


@dataclass(frozen=True, slots=True)
class SandboxLimits:
    """Per-call CPU budget and per-runtime memory cap.

    `max_instructions` counts Lua VM instructions (checked every 1000); `max_seconds` is the CPU
    time of the thread running the call, which also covers time spent in C functions called from
    Lua as long as Lua code runs again afterwards. `max_memory` bounds everything the runtime
    allocates, compiled chunks and state kept in upvalues included. `inline_seconds` is the CPU
    time after which a call made on the event loop counts as slow (see `LuaSandbox.run`).
    """

    max_instructions: int = 50_000_000
    max_seconds: float = 0.25
    max_memory: int = 64 * 1024 * 1024
    inline_seconds: float = 0.002


@dataclass(frozen=True, slots=True)
class RunResult:
    exited: bool
    """The chunk called an exit function (kong.response.exit, ngx.exit...)."""
    returned_function: Any = None
    """The Lua function the chunk returned, if any (Kong's "chunk returns a handler" style)."""


_FINISHED = RunResult(exited=False)
_EXITED_RESULT = RunResult(exited=True)
# Shared, immutable: the two results of almost every call, not rebuilt per call.


def _deny_attribute(obj: object, name: object, is_setting: bool) -> str:
    raise AttributeError("access to Python attributes is not allowed in the sandbox")


class LuaSandbox:
    """One Lua runtime with the privileged prelude loaded. See the module docstring."""

    __slots__ = (
        "_compile",
        "_limits",
        "_new_env",
        "_run",
        "_runtime",
        "signal_exit",
        "touch",
        "went_slow",
    )

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
        privileged = self._runtime.execute(PRELUDE, time.thread_time)
        self._run = privileged[b"run"]
        self._compile = privileged[b"compile"]
        self._new_env = privileged[b"new_env"]
        self.signal_exit: Any = privileged[b"signal_exit"]
        """Lua function for PDK wrappers: marks the call as exited and unwinds the chunk."""
        self.touch: Any = privileged[b"touch"]
        """Lua function for PDK wrappers that change something: the call may not be moved."""
        self.went_slow = False
        """An inline call once passed `limits.inline_seconds` (never reset)."""

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

    def run(self, fn: Any, inline: bool = False, may_move: bool = False) -> RunResult:
        """Call `fn` (no arguments) under the limits. See the module docstring for errors."""
        limits = self._limits
        try:
            status, detail, slow = self._run(
                fn,
                limits.max_instructions,
                limits.max_seconds,
                limits.inline_seconds if inline else None,
                may_move,
            )
        except lupa.LuaMemoryError as exc:
            self._runtime.gccollect()
            raise LuaLimitError("not enough memory") from exc
        except lupa.LuaError as exc:
            # Only a budget hook firing in the prelude's few instructions after the protected
            # call can get here: treat it as the limit it is.
            raise LuaLimitError(f"limit exceeded: {exc}") from exc
        if slow:
            self.went_slow = True
        if status == _OK:
            return _FINISHED if detail is None else RunResult(False, detail)
        if status == _EXITED:
            return _EXITED_RESULT
        if status in (_LIMITED, _NO_MEMORY):
            raise LuaLimitError(_text(detail))
        if status == _MOVED:
            raise LuaMoved
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
