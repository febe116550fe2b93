"""Bounded string functions: the guard that keeps C-level string work inside the CPU budget.

The instruction hook that enforces a sandbox's budget only runs between Lua VM instructions, so
one call into C can run for ever: `("a"):rep(40):find(("a*"):rep(40) .. "b")` backtracks
exponentially inside lstrlib's matcher, `string.rep("", 1e15)` loops 10^15 times copying nothing.
This privileged code runs once per runtime, before the prelude, and replaces the functions in the
global `string` table (which is also the string metatable's `__index`, so `s:find(...)` is covered):

- `find`, `match`, `gmatch`, `gsub`: a worst-case step count is estimated from the subject's
  length and the pattern's shape (items, quantifiers, `%b`, back-references). Cheap calls go to
  the C functions unchanged; the others run a line-for-line Lua port of lstrlib's matcher
  (`lua_matcher.py`) whose every step counts against the instruction budget, so a pathological
  pattern ends in the sandbox's limit error instead of hanging the node. Results and errors
  are Lua 5.4's. A plain `find` that would be slow in C (lmemfind is O(n*m)) uses Python's
  `bytes.find`.
- `rep`: the empty-string case returns at once; results over `MAX_REP` bytes are errors.

`install_bounded_strings(runtime)` installs both this guard and the matcher it falls back on
(`lua_matcher.py`).
"""

from __future__ import annotations

from typing import Any

from gateway.lua.lua_matcher import MATCHER_LUA

MAX_REP = 16 * 1024 * 1024
"""Largest string `string.rep` builds (bytes); the runtime's memory cap still applies."""

C_STEP_LIMIT = 5_000_000
"""Largest estimated worst-case step count left to the C matcher (~10 ms of C)."""


def plain_find(subject: bytes, pattern: bytes, init: int) -> int | None:
    """1-based index of `pattern` in `subject` from 1-based `init`, or None (linear time)."""
    index = subject.find(pattern, init - 1)
    return None if index < 0 else index + 1


PATTERNS_LUA = (
    b"""
local MAX_REP, C_STEP_LIMIT = %d, %d
"""
    % (MAX_REP, C_STEP_LIMIT)
    + b"""
local matcher = ...
local type, tostring, error = type, tostring, error
local byte = string.byte
local C, c_find = matcher.c, matcher.c.find
local lua_find, lua_match, lua_gmatch, lua_gsub =
  matcher.find, matcher.match, matcher.gmatch, matcher.gsub
local CARET, LBRACKET, RBRACKET, ESC = 94, 91, 93, 37

-- Worst-case cost model. Every quantified item can take up to n+1 lengths, a '?' two, each
-- %b and back-reference scans up to n bytes; unanchored searches retry at every position.

local shapes, shape_count = {}, 0

-- Index just past the set that starts at i ('[' at i).
local function set_end(p, i, lp)
  local j = i + (byte(p, i + 1) == CARET and 2 or 1) + 1
  while j <= lp and byte(p, j) ~= RBRACKET do
    j = j + (byte(p, j) == ESC and 2 or 1)
  end
  return j + 1
end

local function shape(p)
  local found = shapes[p]
  if found then return found end
  local lp = #p
  local factors, optional, last = 0, 0, nil
  local dollar = lp > 0 and byte(p, lp) == 36 and (lp < 2 or byte(p, lp - 1) ~= ESC)
  local stop = dollar and lp - 1 or lp
  local i = byte(p, 1) == CARET and 2 or 1
  while i <= stop do
    local c = byte(p, i)
    local nxt, kind = i + 1, "one"
    if c == 40 or c == 41 then
      kind = nil                                       -- captures cost nothing
    elseif c == ESC then
      local d = byte(p, i + 1)
      if d == 98 then
        nxt, kind = i + 4, "scan"                      -- %bxy
      elseif d == 102 then
        nxt = byte(p, i + 2) == LBRACKET and set_end(p, i + 2, lp) or i + 3
      elseif d and d >= 48 and d <= 57 then
        nxt, kind = i + 2, "scan"                      -- back-reference
      else
        nxt = i + 2
      end
    elseif c == LBRACKET then
      nxt = set_end(p, i, lp)
    end
    local q = kind == "one" and byte(p, nxt)
    if q == 42 or q == 43 or q == 45 then
      kind, nxt = "expand", nxt + 1
    elseif q == 63 then
      kind, nxt = "optional", nxt + 1
    end
    if kind == "expand" or kind == "scan" then factors = factors + 1
    elseif kind == "optional" then optional = optional + 1 end
    if kind then last = kind end
    i = nxt
  end
  -- A quantified last item (before any ')', with no '$') matches at its first try: its scan is
  -- paid once per match, not once per way of matching what comes before.
  if not dollar then
    if last == "expand" then factors = factors - 1
    elseif last == "optional" then optional = optional - 1 end
  end
  found = { anchored = byte(p, 1) == CARET, len = lp, factors = factors, optional = optional }
  if shape_count >= 512 then shapes, shape_count = {}, 0 end
  shapes[p], shape_count = found, shape_count + 1
  return found
end

-- Whether the C matcher's worst case on a subject of n bytes is within C_STEP_LIMIT steps.
-- `anchors` is false for gmatch, where a leading '^' is an ordinary character.
local function cheap(n, p, anchors)
  local sh = shape(p)
  local cost = (sh.len + 2) * ((anchors and sh.anchored) and 2 or (n + 2))
  for _ = 1, sh.factors do
    cost = cost * (n + 1)
    if cost > C_STEP_LIMIT then return false end
  end
  for _ = 1, sh.optional do
    cost = cost * 2
    if cost > C_STEP_LIMIT then return false end
  end
  return cost <= C_STEP_LIMIT
end

local function text(v)
  if type(v) == "number" then return tostring(v) end
  return v
end

local function is_text(s, p)
  return type(s) == "string" and type(p) == "string"
end

-- An integer argument as C's luaL_optinteger reads it (numbers and numeric strings); `odd` when
-- it is not one, in which case the C function is called to raise its own error.
local function int_arg(v)
  if v == nil then return nil end
  local n = tonumber(v)
  if n == nil or type(v) == "table" then return nil, true end
  n = math.tointeger(n)
  if n == nil then return nil, true end
  return n
end

function string.find(s, p, init, plain)
  s, p = text(s), text(p)
  local start, odd = int_arg(init)
  if odd or not is_text(s, p) then return C.find(s, p, init, plain) end
  local n = #s - (start and start > 1 and start - 1 or 0)
  if plain or not c_find(p, "[%^%$%*%+%?%.%(%)%[%]%%%-]") then
    if (n + 1) * (#p + 1) <= C_STEP_LIMIT then return C.find(s, p, init, plain) end
    return lua_find(s, p, start, true)
  end
  if cheap(n, p, true) then return C.find(s, p, init) end
  return lua_find(s, p, start, false)
end

function string.match(s, p, init)
  s, p = text(s), text(p)
  local start, odd = int_arg(init)
  if odd or not is_text(s, p) then return C.match(s, p, init) end
  local n = #s - (start and start > 1 and start - 1 or 0)
  if cheap(n, p, true) then return C.match(s, p, init) end
  return lua_match(s, p, start)
end

function string.gmatch(s, p, init)
  s, p = text(s), text(p)
  local start, odd = int_arg(init)
  if odd or not is_text(s, p) then return C.gmatch(s, p, init) end
  -- gmatch never anchors: the cost covers every start position.
  if cheap(#s, p, false) then return C.gmatch(s, p, init) end
  return lua_gmatch(s, p, start)
end

function string.gsub(s, p, repl, n)
  s, p = text(s), text(p)
  local kind = type(repl)
  local max_n, odd = int_arg(n)
  if odd or not is_text(s, p)
    or (kind ~= "string" and kind ~= "number" and kind ~= "table" and kind ~= "function") then
    return C.gsub(s, p, repl, n)
  end
  if cheap(#s, p, true) then return C.gsub(s, p, repl, n) end
  return lua_gsub(s, p, repl, max_n)
end

function string.rep(s, n, sep)
  s, sep = text(s), text(sep)
  local count, odd = int_arg(n)
  if n == nil then odd = true end
  n = count or n
  if not odd and type(s) == "string" and (sep == nil or type(sep) == "string") then
    if n <= 0 then return "" end
    local unit = #s + (sep and #sep or 0)
    if unit == 0 then return "" end
    if unit * n > MAX_REP then
      error("resulting string too large (string.rep is limited to " .. MAX_REP .. " bytes)", 2)
    end
  end
  return C.rep(s, n, sep)
end

return cheap
"""
)


def install_bounded_strings(runtime: Any) -> Any:
    """Replace the string functions of `runtime` (a lupa LuaRuntime) with the bounded ones.

    Returns the Lua matcher table (`find`, `match`, `gmatch`, `gsub`, and `c`, the originals),
    for tests.
    """
    matcher = runtime.execute(MATCHER_LUA, plain_find)
    runtime.execute(PATTERNS_LUA, matcher)
    return matcher
