"""The async phases (rewrite, access, log) of one runtime: inline while fast, else on a thread.

Lua holds the thread that calls it. On the event loop, a runaway snippet would delay every other
request of its data-plane process until its budget stops it; on another thread it does not:
lupa releases the GIL while Lua runs (a snippet's PDK calls take it back briefly).

`AsyncPhases(runner)`:

- `await run(phase, ctx)`: while the runtime is known-fast, the call runs inline on the event
  loop (no thread hand-off: the how-to's snippet costs a few microseconds). The first inline
  call that passes `SandboxLimits.inline_seconds` of CPU switches the runtime to its own worker
  thread for the rest of its life (the compiled plugin instance, i.e. until the next
  configuration). That call itself is stopped at the threshold and finished on the worker when
  running it again is safe (`PhaseRunner` / `LuaSandbox.run`: the chunk touched nothing and its
  environment holds no state); otherwise it finishes inline within its budget, the one stall
  this runtime can cause. Every later call runs on the worker with the full budget.
- `run_inline(phase, ctx, head)`: a call on the calling thread with the full budget, never
  moved (for synchronous callers such as tests).
- `on_worker`: whether the runtime was switched.

The worker thread runs at a lower OS priority (nice +10 where the OS allows it): a runaway burns
only CPU time the event loop does not want, so it costs the other requests nothing even when the
node's cores are busy. Budgets count the worker's own CPU time, so a starved runaway takes longer
to get its 500 but never more CPU than its budget.

One thread per switched runtime: a lupa runtime and its PDK binding serve one call at a time, so
calls are serialised by a lock (taken inline too, where it is never contended: inline calls stop
for good before the first worker call). Calls queue on the worker in order, so a request's log
phase runs after its access phase even if the request was cancelled meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

from gateway.context import Exit, RequestContext, ResponseHead
from gateway.lua.binding import Carry
from gateway.lua.phases import PhaseMoved, PhaseRunner


class AsyncPhases:
    """See the module docstring."""

    __slots__ = ("_executor", "_lock", "_runner")

    def __init__(self, runner: PhaseRunner) -> None:
        self._runner = runner
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    @property
    def on_worker(self) -> bool:
        """The runtime was switched to its worker thread."""
        return self._executor is not None

    def run_inline(
        self, phase: str, ctx: RequestContext, head: ResponseHead | None = None
    ) -> Exit | None:
        """Run `phase` on the calling thread with the full budget (see the module docstring)."""
        with self._lock:
            return self._runner.run(phase, ctx, head)

    async def run(self, phase: str, ctx: RequestContext) -> Exit | None:
        """Run `phase` for `ctx` inline or on the worker (see the module docstring)."""
        executor = self._executor
        if executor is not None:
            return await self._on_worker(executor, phase, ctx, 0, None)
        runner = self._runner
        moved: PhaseMoved | None = None
        with self._lock:
            try:
                return runner.run(phase, ctx, inline=True)
            except PhaseMoved as exc:
                moved = exc
            finally:
                # Also after an error or a limit: a call that went slow switches the runtime.
                if runner.sandbox.went_slow and self._executor is None:
                    self._executor = ThreadPoolExecutor(
                        1, thread_name_prefix="lockgate-lua", initializer=_lower_priority
                    )
        assert moved is not None and self._executor is not None  # a moved call went slow
        return await self._on_worker(self._executor, phase, ctx, moved.index, moved.carry)

    async def _on_worker(
        self,
        executor: ThreadPoolExecutor,
        phase: str,
        ctx: RequestContext,
        start: int,
        carry: Carry | None,
    ) -> Exit | None:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(executor, self._work, phase, ctx, start, carry)

    def _work(
        self, phase: str, ctx: RequestContext, start: int, carry: Carry | None
    ) -> Exit | None:
        with self._lock:
            return self._runner.run(phase, ctx, start=start, carry=carry)


WORKER_NICENESS = 10
"""How much lower than the event loop's the worker thread's OS priority is."""


def _lower_priority() -> None:
    # Linux keeps a nice value per thread: PRIO_PROCESS with a thread id sets only that thread.
    # Elsewhere (no such call, or not permitted) the worker keeps the default priority.
    with contextlib.suppress(AttributeError, OSError):
        thread = threading.get_native_id()
        niceness = os.getpriority(os.PRIO_PROCESS, thread) + WORKER_NICENESS
        os.setpriority(os.PRIO_PROCESS, thread, min(niceness, 19))
