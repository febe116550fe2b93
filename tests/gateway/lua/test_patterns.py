"""Bounded string functions: Lua 5.4's results, and no way to hang the node from inside C.

The Lua port of the matcher is checked against the C original on a corpus of subjects and
patterns (every result and error must agree), then pathological calls that would run for
minutes in C must end in the sandbox's limit within its time budget.
"""

from __future__ import annotations

import time
from itertools import product
from typing import Any

import lupa.lua54 as lupa
import pytest

from gateway.lua.lua_matcher import MATCHER_LUA
from gateway.lua.patterns import MAX_REP
from gateway.lua.sandbox import LuaLimitError, LuaRuntimeError, LuaSandbox, SandboxLimits

SUBJECTS = [
    b"",
    b"hello world",
    b"  trim me  ",
    b"aaaaab",
    b"a,b,,c",
    b"key=val&k2=v2",
    b"f(a(b)c)d",
    b"THE (quick) fox",
    b"abc123def",
    b"x\0y",
    b"Bearer abc.def",
]
PATTERNS = [
    b"o", b"^h", b"l+", b"l-", b"(l+)", b"%s*(.-)%s*$", b"^%s*(.-)%s*$", b"[^,]*", b"[^,]+",
    b"(%w+)=(%w+)", b"%b()", b"%f[%w]%w+", b"()a+()", b"(a)(a)%2", b"(a+)b", b"a*b", b"a?a?b",
    b"[%a_][%w_]*", b"%d+", b"[a-c]+", b"[]]", b"[^%s]+", b"%u+", b"%p", b"^Bearer (.+)$", b"$",
    b"^", b".", b"x%zy", b"[%]]", b"(%a)%1", b"[a-]", b"%", b"[a", b"(()", b"%1", b"(h)(e)(l)",
    b".-b", b"%x+", b"%c", b"%S+", b"[%w.]+$", b"%g+", b"%L+", b"%f[%a]", b"%bxy",
]  # fmt: skip
REPLACEMENTS = [b"<%0>", b"%1", b"[%%]", b"%2", b"%x", 7]

_COMPARE = b"""
local L, C = ...
local function pack(ok, ...) return { ok = ok, n = select("#", ...), ... } end
local function show(t)
  local out = { tostring(t.ok), tostring(t.n) }
  for i = 1, t.n do out[#out + 1] = math.type(t[i]) or type(t[i]) out[#out + 1] = tostring(t[i]) end
  return table.concat(out, "|")
end
local function iterate(f, s, p)
  local out = {}
  for a, b in f(s, p) do out[#out + 1] = tostring(a) .. "/" .. tostring(b) end
  return table.concat(out, ",")
end
return function(fn, ...)
  local a, b
  if fn == "gmatch" then
    a, b = pack(pcall(iterate, L.gmatch, ...)), pack(pcall(iterate, C.gmatch, ...))
  else
    a, b = pack(pcall(L[fn], ...)), pack(pcall(C[fn], ...))
  end
  return show(a), show(b)
end
"""


class Matchers:
    """The Lua port and the C originals in one bare runtime."""

    def __init__(self) -> None:
        self.runtime = lupa.LuaRuntime(encoding=None)
        # Without plain_find: the plain search is the Lua loop, compared with C's too.
        module = self.runtime.execute(MATCHER_LUA)
        self._compare = self.runtime.execute(_COMPARE, module, module[b"c"])

    def agree(self, fn: bytes, *args: Any) -> bool:
        lua_result, c_result = self._compare(fn, *args)
        return bool(lua_result == c_result)


@pytest.fixture(scope="module")
def matchers() -> Matchers:
    return Matchers()


def test_lua_matcher_agrees_with_c_on_the_corpus(matchers: Matchers) -> None:
    calls: list[tuple[Any, ...]] = []
    for subject, pattern in product(SUBJECTS, PATTERNS):
        calls += [(b"find", subject, pattern, init) for init in (None, 1, 3, -2, 0, 20)]
        calls += [(b"match", subject, pattern, init) for init in (None, 2, -3)]
        calls.append((b"find", subject, pattern, None, True))
        calls += [(b"gsub", subject, pattern, repl, n) for repl in REPLACEMENTS for n in (None, 1)]
        calls.append((b"gmatch", subject, pattern))
    assert len(calls) > 5000
    assert [call for call in calls if not matchers.agree(*call)] == []


def test_function_and_table_replacements_agree(matchers: Matchers) -> None:
    replacements = [
        matchers.runtime.eval("function(x) return x:upper() end"),
        matchers.runtime.eval("function(x, y) if y then return y .. x end end"),
        matchers.runtime.eval("{ a = 'A', o = false, l = {} }"),
    ]
    differences = [
        (subject, pattern, index)
        for subject, pattern in product(SUBJECTS, PATTERNS)
        for index, repl in enumerate(replacements)
        if not matchers.agree(b"gsub", subject, pattern, repl)
    ]
    assert differences == []


LIMITS = SandboxLimits(max_instructions=50_000_000, max_seconds=0.25)


def run(code: str) -> object:
    """Run `code` (the body of a function) in a fresh sandbox; return what it returns."""
    sandbox = LuaSandbox(LIMITS)
    setup = sandbox.run(sandbox.compile(f"return function() {code} end", {}))
    return sandbox.run(setup.returned_function) and setup.returned_function()


PATHOLOGICAL = [
    pytest.param(
        "local s = ('a'):rep(40) return s:find(('a*'):rep(40) .. 'b')", id="find-backtracking"
    ),
    pytest.param(
        "local s = ('a'):rep(30) return s:match(('a?'):rep(30) .. ('a'):rep(30))",
        id="match-exponential-optional",
    ),
    pytest.param(
        "local s = ('a'):rep(30) return s:gsub(('a?'):rep(30) .. ('a'):rep(30), 'x')",
        id="gsub-exponential-optional",
    ),
    pytest.param(
        "local s = (' '):rep(200000) .. 'x' return s:find('%s+$')", id="find-quadratic-suffix"
    ),
    pytest.param(
        "local n = 0 for _ in (('a'):rep(40)):gmatch(('a*'):rep(20) .. 'b') do n = n + 1 end",
        id="gmatch-backtracking",
    ),
    pytest.param(
        "local s = ('a'):rep(40) return string.find(s, ('a*'):rep(40) .. 'b', 1.0)",
        id="float-init-does-not-bypass",
    ),
]


@pytest.mark.parametrize("code", PATHOLOGICAL)
def test_pathological_patterns_end_in_the_limit_within_the_budget(code: str) -> None:
    started = time.monotonic()
    with pytest.raises(LuaLimitError):
        run(code)
    assert time.monotonic() - started < 1.5


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("return (('a b '):rep(100000)):gsub('%s+', '')", (b"ab" * 100000, 200000)),
        ("return #(('x'):rep(1000)):match('^%s*(.-)%s*$')", 1000),
        ("return ('  padded  '):match('^%s*(.-)%s*$')", b"padded"),
        ("return (('a'):rep(3000000)):find(('a'):rep(100000) .. 'b', 1, true)", None),
        ("return (('a'):rep(3000000) .. 'b'):find(('a'):rep(100000) .. 'b', 1, true)",
         (2900001, 3000001)),
        ("return ('Bearer abc'):find('^Bearer ')", (1, 7)),
        ("local n = 0 for w in (('w,'):rep(50000)):gmatch('[^,]+') do n = n + 1 end return n",
         50000),
    ],
)  # fmt: skip
def test_ordinary_calls_on_large_subjects_are_not_limited(code: str, expected: object) -> None:
    assert run(code) == expected


def test_string_rep_is_bounded() -> None:
    started = time.monotonic()
    assert run("return string.rep('', 1e15), (''):rep(2^62, ''), string.rep('x', '3')") == (
        b"",
        b"",
        b"xxx",
    )
    assert time.monotonic() - started < 0.5
    with pytest.raises(LuaRuntimeError, match=r"string\.rep is limited to"):
        run(f"return ('ab'):rep({MAX_REP // 2 + 1})")
    with pytest.raises(LuaRuntimeError, match=r"string\.rep is limited to"):
        run(f"return ('a'):rep({MAX_REP // 2 + 1}, 'b')")
    assert run(f"return #('a'):rep({MAX_REP})") == MAX_REP


def test_errors_of_the_guarded_functions_are_luas() -> None:
    with pytest.raises(LuaRuntimeError, match="bad argument #1 to 'find'"):
        run("return string.find({}, 'x')")
    with pytest.raises(LuaRuntimeError, match="number has no integer representation"):
        run("return ('x'):rep(1.5)")
    with pytest.raises(LuaRuntimeError, match="malformed pattern"):
        run("return ('x'):find('%')")
