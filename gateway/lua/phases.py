"""One Lua runtime running the compiled chunks of some phases of one plugin instance.

- `PhaseRunner(plugin_name, instance_id, sources, limits)` compiles every chunk of `sources`
  (phase -> Lua strings) once, in its own `LuaSandbox` with its own PDK.
- `PhaseRunner.run(phase, ctx, head)`: the chunks of a phase in order (Kong's two code styles:
  a chunk runs on every request, unless its first run returns a function, which then runs
  immediately and on every later request, its upvalues kept). An exit ends the phase and is
  returned; a Lua error raises `LuaRuntimeError`, a blown limit `LuaLimitError`.
- With `inline=True` (a call made on the event loop), a chunk that passes the inline threshold
  untouched is stopped (see `LuaSandbox.run`) and `PhaseMoved` says where the phase stands:
  `run(..., start=moved.index, carry=moved.carry)` on another thread finishes it, running that
  chunk again from its start and the later chunks after it. The chunks before it are not run
  again: what they did stays done.
- `PhaseRunner.filter_body(ctx, chunk, eof)`: the body_filter chunks on one body chunk.

A runner serves one call at a time (one PDK binding); `offload.AsyncPhases` serialises the
calls made from the event loop and from its worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from gateway.context import Exit, RequestContext, ResponseHead
from gateway.lua.binding import REWRITE_ACCESS, Carry
from gateway.lua.pdk import Pdk
from gateway.lua.pdk_ngx import output_exit
from gateway.lua.sandbox import LuaMoved, LuaSandbox, SandboxLimits


class PhaseMoved(Exception):
    """An inline phase stopped at chunk `index` (nothing of that chunk's run is left), with the
    state the earlier chunks left in `carry`; finish it with `run(start=index, carry=carry)`."""

    def __init__(self, index: int, carry: Carry) -> None:
        super().__init__(f"chunk {index} moved to the worker thread")
        self.index = index
        self.carry = carry


class _Chunk:
    """One compiled chunk; after its first run, possibly the function it returned."""

    __slots__ = ("fn", "initialized")

    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.initialized = False


class PhaseRunner:
    """See the module docstring."""

    __slots__ = ("_pdk", "_phases", "sandbox")

    def __init__(
        self,
        plugin_name: str,
        instance_id: str,
        sources: Mapping[str, Sequence[str]],
        limits: SandboxLimits | None = None,
    ) -> None:
        self.sandbox = sandbox = LuaSandbox(limits)
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

    def run(
        self,
        phase: str,
        ctx: RequestContext,
        head: ResponseHead | None = None,
        *,
        inline: bool = False,
        start: int = 0,
        carry: Carry | None = None,
    ) -> Exit | None:
        """Run the chunks of `phase` for `ctx` from chunk `start`; the exit response if one was
        made. See the module docstring for `inline` and `PhaseMoved`."""
        chunks = self._phases.get(phase)
        if not chunks:
            return None
        binding = self._pdk.binding
        binding.bind(ctx, phase, head)
        if carry is not None:
            binding.resume(carry)
        try:
            for index in range(start, len(chunks)):
                try:
                    exited = self._call(chunks[index], inline)
                except LuaMoved:
                    raise PhaseMoved(index, binding.carry()) from None
                if exited or binding.exit is not None:
                    break
            if binding.exit is None and binding.ngx_output and phase in REWRITE_ACCESS:
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

    def _call(self, chunk: _Chunk, inline: bool) -> bool:
        """Run one chunk (Kong's two styles); True if it exited."""
        sandbox = self.sandbox
        if chunk.initialized:
            # Only a compiled chunk may move (the sandbox knows it); a returned function's
            # upvalues make every run of it count.
            return sandbox.run(chunk.fn, inline, inline).exited
        # As Kong: the first run counts as done even if it exits or fails.
        chunk.initialized = True
        try:
            result = sandbox.run(chunk.fn, inline, inline)
        except LuaMoved:
            chunk.initialized = False  # the run on the worker is the first run
            raise
        if result.returned_function is None:
            return result.exited
        chunk.fn = result.returned_function
        return sandbox.run(chunk.fn, inline).exited
