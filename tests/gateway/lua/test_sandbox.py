"""The sandbox: Kong's safe globals only, no way out to the host, and hard CPU/memory limits."""

from __future__ import annotations

import time

import pytest

from gateway.lua.sandbox import (
    LuaLimitError,
    LuaRuntimeError,
    LuaSandbox,
    LuaSyntaxError,
    SandboxLimits,
    check_syntax,
)
from tests.gateway.lua.lua_helpers import compile_phase, make_ctx

LIMITS = SandboxLimits(max_instructions=2_000_000, max_seconds=2.0, max_memory=16 * 1024 * 1024)


@pytest.fixture
def sandbox() -> LuaSandbox:
    return LuaSandbox(LIMITS)


def returns(sandbox: LuaSandbox, code: str) -> object:
    """Evaluate `code` in the sandbox environment and report its value through an exit-free
    side channel: the chunk returns a function that we call via the privileged runtime."""
    fn = sandbox.compile(f"return function() return {code} end", {})
    result = sandbox.run(fn)
    assert result.returned_function is not None
    return result.returned_function()


def test_bytecode_is_rejected(sandbox: LuaSandbox) -> None:
    with pytest.raises(LuaSyntaxError, match="binary chunk"):
        sandbox.compile("\x1bLua\x54\x00", {})


def test_syntax_error_has_luas_message() -> None:
    with pytest.raises(LuaSyntaxError) as info:
        check_syntax("print(")
    assert str(info.value) == '[string "print("]:1: unexpected symbol near <eof>'


def test_safe_globals_and_lua51_names(sandbox: LuaSandbox) -> None:
    assert returns(sandbox, "unpack({7, 8})") == (7, 8)
    assert returns(sandbox, "table.getn({1, 2, 3})") == 3
    assert returns(sandbox, "table.maxn({[1] = 1, [9] = 2})") == 9
    assert returns(sandbox, "math.pow(2, 10)") == 1024.0
    assert returns(sandbox, "_VERSION") == b"Lua 5.1"
    assert returns(sandbox, "_G == _ENV") is True
    assert returns(sandbox, "type(os.time())") == b"number"
    assert returns(sandbox, "string.format('%s-%d', 'a', 3):upper()") == b"A-3"
    assert returns(sandbox, "io.type(42)") is None


def test_globals_set_by_one_chunk_do_not_leak_into_another(sandbox: LuaSandbox) -> None:
    sandbox.run(sandbox.compile("leaked = 'yes'; string.upper = nil", {}))
    assert returns(sandbox, "leaked") is None
    assert returns(sandbox, "string.upper('a')") == b"A"


def test_environment_and_libraries_stay_iterable_and_writable(sandbox: LuaSandbox) -> None:
    # _G and the library tables are proxies (every write is seen); they still behave as tables.
    assert returns(sandbox, "(function() local n = 0 for k in pairs(_G) do n = n + 1 end"
                   " return n end)() >= 15") is True  # fmt: skip
    assert returns(sandbox, "(function() for k in pairs(string) do"
                   " if k == 'format' then return true end end end)()") is True  # fmt: skip
    assert returns(sandbox, "(function() _G.answer = 42 return answer end)()") == 42
    assert returns(sandbox, "(function() string.shout = string.upper"
                   " return ('a'):upper() .. string.shout('b') end)()") == b"AB"  # fmt: skip


def test_runtime_error_raises(sandbox: LuaSandbox) -> None:
    with pytest.raises(LuaRuntimeError, match="boom"):
        sandbox.run(sandbox.compile("error('boom')", {}))


LIMIT_BOMBS = [
    pytest.param("while true do end", id="endless-loop"),
    pytest.param(
        "while true do pcall(function() while true do end end) end", id="loop-catching-limit"
    ),
    pytest.param(
        "local co = coroutine.wrap(function() while true do end end) co()", id="coroutine-loop"
    ),
    pytest.param(
        "local co = coroutine.create(function() while true do end end)"
        " while true do coroutine.resume(co) end",
        id="coroutine-resume-loop",
    ),
    pytest.param(
        "local t = {} for i = 1, 1e9 do t[i] = string.rep('x', 64) .. i end", id="memory-bomb"
    ),
    pytest.param(
        "local s = string.rep('x', 15 * 1024 * 1024) .. string.rep('y', 15 * 1024 * 1024)",
        id="huge-string",
    ),
    pytest.param(
        "local t = {} while true do pcall(function() t[#t + 1] = {} end) end",
        id="memory-bomb-catching-errors",
    ),
]


@pytest.mark.parametrize("code", LIMIT_BOMBS)
def test_limits_stop_the_chunk_and_the_runtime_stays_usable(code: str) -> None:
    functions = compile_phase(
        code, 'kong.service.request.set_header("x-after", "ok")', limits=LIMITS
    )
    healthy = compile_phase('kong.service.request.set_header("x-after", "ok")', limits=LIMITS)
    started = time.monotonic()
    with pytest.raises(LuaLimitError):
        functions.run("access", make_ctx())
    assert time.monotonic() - started < 5
    ctx = make_ctx()
    healthy.run("access", ctx)
    assert ctx.request.headers.get("x-after") == "ok"


@pytest.mark.parametrize(
    "code",
    [
        "local s = ('x'):rep(1024 * 1024)"
        " while true do kong.service.request.add_header('x', s) end",
        "local s = ('x'):rep(1024 * 1024) while true do kong.response.add_header('x', s) end",
        "local s = ('x'):rep(1024 * 1024) local i = 0"
        " while true do i = i + 1 kong.service.request.set_header('x' .. i, s) end",
        "local s = ('x'):rep(1024 * 1024) while true do ngx.say(s) end",
        "local s = ('x'):rep(1024 * 1024) local i = 0"
        " while true do i = i + 1 kong.ctx.shared[i] = s end",
    ],
)
def test_data_written_to_python_counts_against_the_memory_cap(code: str) -> None:
    functions = compile_phase(code, limits=LIMITS)
    ctx = make_ctx()
    with pytest.raises(LuaRuntimeError, match="exceeds the sandbox memory limit"):
        functions.run("access", ctx)
    assert len(ctx.request.headers) + len(ctx.response_headers) + len(ctx.shared) <= 16


@pytest.mark.parametrize(
    "code",
    [
        "local t = {} local c = t for i = 1, 5000 do c.x = {} c = c.x end"
        " kong.response.exit(200, t)",
        "local t = {} t.self = t kong.response.exit(200, t)",
        "local t = {} t.self = t require('cjson').encode(t)",
    ],
)
def test_unserialisable_tables_are_lua_errors(code: str) -> None:
    with pytest.raises(LuaRuntimeError, match="excessive nesting"):
        compile_phase(code).run("access", make_ctx())


def test_same_runtime_serves_normal_calls_after_a_limit(sandbox: LuaSandbox) -> None:
    loop = sandbox.compile("while true do end", {})
    bomb = sandbox.compile("local t = {} while true do t[#t + 1] = ('x'):rep(100) end", {})
    fine = sandbox.compile("return function() return 40 + 2 end", {})
    for fn in (loop, bomb, loop):
        with pytest.raises(LuaLimitError):
            sandbox.run(fn)
    result = sandbox.run(fine)
    assert result.returned_function() == 42


def test_cpu_time_limit_applies_without_instruction_limit() -> None:
    sandbox = LuaSandbox(SandboxLimits(max_instructions=10**12, max_seconds=0.05))
    started = time.monotonic()
    with pytest.raises(LuaLimitError, match="time limit"):
        sandbox.run(sandbox.compile("while true do end", {}))
    assert time.monotonic() - started < 2


def test_limit_is_per_call_not_cumulative() -> None:
    sandbox = LuaSandbox(SandboxLimits(max_instructions=200_000))
    fn = sandbox.compile("for i = 1, 20000 do end", {})
    for _ in range(50):
        sandbox.run(fn)
