"""Slow snippets leave the event loop: inline while fast, on a worker thread once slow.

A call that passes the inline threshold untouched is stopped and run again on the worker; a
call that changed something (the request, kong.ctx, a global, an upvalue) is never run twice:
it finishes inline within its budget. Either way the runtime then runs on its worker for good.
"""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from gateway.context import ResponseHead
from gateway.headers import Headers
from gateway.lua.sandbox import LuaLimitError, LuaSandbox, SandboxLimits
from gateway.lua.serverless import CompiledFunctions
from tests.gateway.lua.lua_helpers import make_ctx

LIMITS = SandboxLimits(max_instructions=10**12, max_seconds=0.5, inline_seconds=0.002)
# About 6M VM instructions: 10-30 ms of CPU, well past the 2 ms inline threshold.
SLOW = "for _ = 1, 3e6 do end"


def compiled(**phases: list[str]) -> CompiledFunctions:
    return CompiledFunctions("pre-function", "plugin-1", phases, LIMITS)


async def header_after(functions: CompiledFunctions, name: str = "x-n") -> list[str]:
    ctx = make_ctx()
    await functions.run_async("access", ctx)
    return ctx.request.headers.get_all(name)


async def test_fast_snippet_stays_inline() -> None:
    functions = compiled(access=['kong.service.request.add_header("x-n", "1")'])
    for _ in range(200):
        assert await header_after(functions) == ["1"]
    assert not functions.on_worker


async def test_untouched_slow_chunk_moves_and_runs_once_more_on_the_worker() -> None:
    functions = compiled(
        access=[
            'kong.service.request.add_header("x-first", "1")',
            SLOW + ' kong.service.request.add_header("x-slow", "1")',
            'kong.service.request.add_header("x-last", "1")',
        ]
    )
    ctx = make_ctx()
    assert await functions.run_async("access", ctx) is None
    # The touching first chunk is not run again; the moved chunk and the rest run once.
    headers = ctx.request.headers
    assert (headers.get_all("x-first"), headers.get_all("x-slow")) == (["1"], ["1"])
    assert headers.get_all("x-last") == ["1"]
    assert functions.on_worker
    ctx = make_ctx()
    await functions.run_async("access", ctx)
    assert ctx.request.headers.get_all("x-slow") == ["1"]


async def test_moved_phase_keeps_what_earlier_chunks_printed() -> None:
    functions = compiled(
        access=['ngx.status = 201 ngx.say("a")', SLOW + ' ngx.say("b")'],
    )
    result = await functions.run_async("access", make_ctx())
    assert functions.on_worker
    assert result is not None and (result.status, result.body) == (201, b"a\nb\n")


@pytest.mark.parametrize(
    ("chunks", "expected"),
    [
        pytest.param(
            ['kong.service.request.add_header("x-n", "1") ' + SLOW],
            [["1"], ["1"]],
            id="request-changed",
        ),
        pytest.param(
            ["n = (n or 0) + 1 " + SLOW + ' kong.service.request.set_header("x-n", n)'],
            [["1"], ["2"]],
            id="global-written",
        ),
        pytest.param(
            [
                "if not seen then seen = { n = 0 } end seen.n = seen.n + 1"
                " if seen.n > 1 then " + SLOW + " end"
                ' kong.service.request.set_header("x-n", seen.n)'
            ],
            [["1"], ["2"]],
            id="table-in-a-global-changed-later",
        ),
        pytest.param(
            [
                "string.count = (string.count or 0) + 1 "
                + SLOW
                + ' kong.service.request.set_header("x-n", string.count)'
            ],
            [["1"], ["2"]],
            id="library-table-written",
        ),
        pytest.param(
            [
                "kong.ctx.plugin.t = { n = 0 }",
                "local t = kong.ctx.plugin.t t.n = t.n + 1 "
                + SLOW
                + ' kong.service.request.set_header("x-n", t.n)',
            ],
            [["1"], ["1"]],
            id="ctx-table-changed",
        ),
        pytest.param(
            [
                "local n = 0 return function() n = n + 1 "
                + SLOW
                + ' kong.service.request.set_header("x-n", n) end'
            ],
            [["1"], ["2"]],
            id="upvalue-changed",
        ),
    ],
)
async def test_touched_slow_call_is_never_run_twice(
    chunks: list[str], expected: list[list[str]]
) -> None:
    functions = compiled(access=chunks)
    assert [await header_after(functions) for _ in expected] == expected
    assert functions.on_worker


async def test_slow_first_run_of_a_chunk_returning_a_function_moves() -> None:
    functions = compiled(
        access=[
            SLOW + " local n = 0"
            ' return function() n = n + 1 kong.service.request.set_header("x-n", n) end'
        ]
    )
    assert [await header_after(functions) for _ in range(3)] == [["1"], ["2"], ["3"]]
    assert functions.on_worker


async def test_runaway_on_the_worker_is_a_limit_and_the_runtime_recovers() -> None:
    functions = compiled(
        access=[
            'if kong.request.get_header("x-spin") then while true do end end'
            ' kong.service.request.set_header("x-n", "ok")'
        ]
    )
    with pytest.raises(LuaLimitError, match="time limit"):
        await functions.run_async("access", make_ctx(headers=[("x-spin", "1")]))
    assert functions.on_worker
    assert await header_after(functions) == ["ok"]


async def test_event_loop_runs_while_a_runaway_is_on_the_worker() -> None:
    functions = compiled(access=["while true do end"])
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            began = time.perf_counter()
            await asyncio.sleep(0.001)
            ticks.append(time.perf_counter() - began)

    task = asyncio.create_task(ticker())
    began = time.perf_counter()
    try:
        with pytest.raises(LuaLimitError):
            await functions.run_async("access", make_ctx())
    finally:
        task.cancel()
    # Only the inline part (the 2 ms threshold) held the loop; the 0.5 s budget ran beside it.
    assert time.perf_counter() - began >= 0.5
    assert len(ticks) > 50
    assert sorted(ticks)[len(ticks) // 2] < 0.02


async def test_sync_phases_do_not_wait_for_the_worker() -> None:
    functions = compiled(
        access=["kong.ctx.plugin.t = { tag = 'from access' } while true do end"],
        header_filter=['kong.response.set_header("x-tag", "ok")'],
    )
    with pytest.raises(LuaLimitError):
        await functions.run_async("access", make_ctx())  # switches to the worker
    running = asyncio.ensure_future(functions.run_async("access", make_ctx()))
    await asyncio.sleep(0.05)  # the runaway is now on the worker
    assert not running.done()
    head = ResponseHead(200, Headers())
    ctx = make_ctx()
    ctx.response = head
    began = time.perf_counter()
    functions.run("header_filter", ctx, head)
    assert time.perf_counter() - began < 0.05
    assert head.headers.get("x-tag") == "ok"
    with pytest.raises(LuaLimitError):
        await running


async def test_ctx_tables_cross_from_async_to_sync_phases_as_copies() -> None:
    functions = compiled(
        access=["kong.ctx.plugin.t = { tag = 'from access' }"],
        header_filter=[
            "local t = kong.ctx.plugin.t t.tag = t.tag .. '!'"
            ' kong.response.set_header("x-tag", kong.ctx.plugin.t.tag)'
        ],
    )
    ctx = make_ctx()
    await functions.run_async("access", ctx)
    head = ResponseHead(200, Headers())
    ctx.response = head
    functions.run("header_filter", ctx, head)
    assert head.headers.get("x-tag") == "from access"


def test_budget_is_the_cpu_time_of_the_running_thread() -> None:
    # Two runaways at once in two threads: each still gets its whole budget of its own CPU
    # time (a process-wide clock would stop each after about half of it on two cores).
    limits = SandboxLimits(max_instructions=10**12, max_seconds=0.2)
    used: list[float] = []

    def runaway() -> None:
        sandbox = LuaSandbox(limits)
        fn = sandbox.compile("while true do end", {})
        began = time.thread_time()
        with pytest.raises(LuaLimitError, match="time limit"):
            sandbox.run(fn)
        used.append(time.thread_time() - began)

    threads = [threading.Thread(target=runaway) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(used) == 2
    assert all(0.19 <= seconds < 0.4 for seconds in used), used
