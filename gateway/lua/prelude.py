"""The privileged Lua code run once in every sandbox runtime, before any untrusted chunk.

It captures what only the gateway may use (`debug.sethook`, `load`, `collectgarbage`, the real
`pcall`), strips `string.dump` from the shared string library (reachable from any string value
as `("").dump`), and returns the functions `LuaSandbox` drives:

- `run(fn, max_steps, max_seconds)`: call `fn` under the instruction/CPU budget; returns a status
  code (see `sandbox.py`) and the chunk's return value when it is a function.
- `compile(source, env)`: `load` in text mode only (no bytecode), with a private environment.
- `new_env(extra)`: a fresh environment of Kong's safe globals, plus `extra` (kong, ngx, require).
- `signal_exit()`: used by the PDK's exit functions to end the phase.

Untrusted code never sees these: it runs with an environment built by `new_env`, and the wrappers
around `pcall`/`coroutine` make limit errors and exits uncatchable.
"""

from __future__ import annotations

PRELUDE = b"""
local thread_clock = ...
local sethook, clock, real_pcall, real_xpcall = debug.sethook, os.clock, pcall, xpcall
local real_error, real_type, real_load, real_pairs = error, type, load, pairs
local real_tostring, real_select, setmetatable = tostring, select, setmetatable
local real_next, max = next, math.max
local collect = collectgarbage
local co_create, co_resume = coroutine.create, coroutine.resume
local unpack = table.unpack

-- The string metatable's __index is the global string table: remove dump for everybody.
string.dump = nil

local STEP = 1000          -- instructions between two hook calls
local RECHECK = 0.0005     -- least process CPU (s) between two reads of the thread clock
local LIMIT, EXIT = {}, {} -- error sentinels: identity, never strings (no position prefix)
local MOVED = "moved to the worker"
local steps_left, seconds, aborted, exiting = 0, 0, nil, false
-- Per call: process-clock and thread-clock origins, when to read the thread clock next, the
-- inline threshold still to watch (nil: none), the flags of a chunk that may be moved, whether
-- the call changed anything outside itself (`dirty`), and whether it passed the threshold.
local p0, t0, next_check, inline, movable, dirty, slow = nil, 0, 0, nil, nil, false, false

-- Budgets count the CPU time of the thread running the call. os.clock() (process CPU, no GIL)
-- is read at every hook; since a process's CPU time grows at least as fast as one thread's,
-- the thread clock (a Python call, so it needs the GIL) is read only once the process clock
-- says a threshold may have passed, a few times per call at most.
local function check(now)
  local used = thread_clock() - t0
  if inline and used >= inline then
    inline, slow = nil, true
    if movable and not dirty and not movable.written then
      aborted = aborted or MOVED
      real_error(LIMIT, 0)
    end
  end
  if used >= seconds then
    aborted = aborted or "time limit exceeded"
    real_error(LIMIT, 0)
  end
  next_check = now - p0 + max((inline or seconds) - used, RECHECK)
end

local function hook()
  steps_left = steps_left - 1
  if steps_left <= 0 then
    aborted = aborted or "instruction limit exceeded"
    real_error(LIMIT, 0)
  end
  -- The clocks are system calls: start them at the first hook (after STEP instructions), so
  -- that the short chunks most calls run never read them.
  local now = clock()
  if p0 == nil then
    p0, t0, next_check = now, thread_clock(), inline or seconds
  elseif now - p0 >= next_check then
    check(now)
  end
end

-- PDK functions that change the request, the response or kong.ctx call this: a call that did
-- is never moved (running it again would repeat the change).
local function touch() dirty = true end

-- Every environment, and the library tables in it, is an empty proxy over its real table, so
-- that every write goes through __newindex and marks the environment as holding state: a chunk
-- whose environment holds state is never moved either (a second run would see the first's).
local flags_of = setmetatable({}, { __mode = "k" })  -- compiled chunk -> its environment's flags

local function guarded(t, flags)
  return setmetatable({}, {
    __index = t,
    __newindex = function(_, k, v) flags.written = true; t[k] = v end,
    __pairs = function() return real_next, t, nil end,
  })
end

-- After a protected call inside the sandbox: a limit or an exit must keep unwinding.
local function unwind_check(...)
  if aborted then real_error(LIMIT, 0) end
  if exiting then real_error(EXIT, 0) end
  return ...
end

local function safe_pcall(f, ...)
  return unwind_check(real_pcall(f, ...))
end

local function safe_xpcall(f, handler, ...)
  return unwind_check(real_xpcall(f, handler, ...))
end

-- Hooks set from Lua are per coroutine: every coroutine the sandbox creates gets the budget hook.
local function hooked_coroutine(f)
  local co = co_create(f)
  sethook(co, hook, "", STEP)
  return co
end

local function safe_resume(co, ...)
  return unwind_check(co_resume(co, ...))
end

local function wrap_results(ok, ...)
  if not ok then real_error((...), 0) end
  return ...
end

local function safe_wrap(f)
  local co = hooked_coroutine(f)
  return function(...)
    return wrap_results(unwind_check(co_resume(co, ...)))
  end
end

local function copy(t, skip)
  local out = {}
  for k, v in real_pairs(t) do
    if not (skip and skip[k]) then out[k] = v end
  end
  return out
end

local lua51 = {}
function lua51.getn(t) return #t end
function lua51.maxn(t)
  local n = 0
  for k in real_pairs(t) do
    if real_type(k) == "number" and k > n then n = k end
  end
  return n
end
function lua51.foreach(t, f)
  for k, v in real_pairs(t) do
    local r = f(k, v)
    if r ~= nil then return r end
  end
end
function lua51.foreachi(t, f)
  for i = 1, #t do
    local r = f(i, t[i])
    if r ~= nil then return r end
  end
end
function lua51.clear(t) for k in real_pairs(t) do t[k] = nil end end
function lua51.clone(t) return copy(t) end
function lua51.new() return {} end
function lua51.isempty(t) return next(t) == nil end
function lua51.nkeys(t)
  local n = 0
  for _ in real_pairs(t) do n = n + 1 end
  return n
end
function lua51.isarray(t)
  local n = 0
  for k in real_pairs(t) do
    if real_type(k) ~= "number" or k < 1 or k % 1 ~= 0 then return false end
    n = n + 1
  end
  for i = 1, n do if t[i] == nil then return false end end
  return true
end

local function build_table_lib()
  local t = copy(table)
  for k, v in real_pairs(lua51) do t[k] = v end
  return t
end

local function build_math_lib()
  local m = copy(math)
  m.pow = function(x, y) return x ^ y end
  m.atan2 = math.atan
  m.log10 = function(x) return math.log(x, 10) end
  m.cosh = function(x) return (math.exp(x) + math.exp(-x)) / 2 end
  m.sinh = function(x) return (math.exp(x) - math.exp(-x)) / 2 end
  m.tanh = function(x) local a, b = math.exp(x), math.exp(-x) return (a - b) / (a + b) end
  m.ldexp = function(x, e) return x * 2.0 ^ e end
  m.frexp = function(x)
    if x == 0 then return 0.0, 0 end
    local e = math.floor(math.log(math.abs(x), 2)) + 1
    return x / 2.0 ^ e, e
  end
  return m
end

local function build_coroutine_lib()
  return {
    create = hooked_coroutine, resume = safe_resume, wrap = safe_wrap,
    running = coroutine.running, status = coroutine.status, yield = coroutine.yield,
  }
end

local function build_os_lib()
  return { clock = os.clock, date = os.date, difftime = os.difftime, time = os.time }
end

local NO_DUMP = { dump = true }

local envs = setmetatable({}, { __mode = "k" })  -- environment -> its flags

local function new_env(extra)
  local flags = { written = false }
  local libs = {
    coroutine = build_coroutine_lib(),
    io = { type = io.type },
    math = build_math_lib(),
    os = build_os_lib(),
    string = copy(string, NO_DUMP),
    table = build_table_lib(),
  }
  local base = {
    _VERSION = "Lua 5.1",
    assert = assert, error = real_error, ipairs = ipairs, next = next, pairs = real_pairs,
    pcall = safe_pcall, xpcall = safe_xpcall, select = real_select, tonumber = tonumber,
    tostring = real_tostring, type = real_type, unpack = unpack,
  }
  for name, lib in real_pairs(libs) do base[name] = guarded(lib, flags) end
  for k, v in real_pairs(extra) do base[k] = v end
  local env = guarded(base, flags)
  base._G = env
  envs[env] = flags
  return env
end

local function compile(source, env)
  local fn, err = real_load(source, nil, "t", env)
  if fn then flags_of[fn] = envs[env] end
  return fn, err
end

local function describe(err)
  if real_type(err) == "string" then return err end
  local ok, text = real_pcall(real_tostring, err)
  if ok and real_type(text) == "string" then return text end
  return "(error object is a " .. real_type(err) .. " value)"
end

-- Status codes, mirrored in sandbox.py.
local OK, EXITED, LIMITED, NO_MEMORY, FAILED, MOVED_STATUS = 0, 1, 2, 3, 4, 5

-- Call fn under the budget. With `inline_seconds`, a call that passes that much CPU is reported
-- slow; if `may_move` too, fn is a compiled chunk whose environment holds no state and the call
-- has touched nothing yet, the call stops there instead (MOVED), to be run again elsewhere.
local function run(fn, max_steps, max_seconds, inline_seconds, may_move)
  steps_left = max_steps // STEP + 1
  p0, seconds, inline, slow, dirty = nil, max_seconds, inline_seconds, false, false
  movable = may_move and flags_of[fn] or nil
  aborted, exiting = nil, false
  sethook(hook, "", STEP)
  local ok, result = real_pcall(fn)
  sethook()
  if aborted == MOVED then return MOVED_STATUS, nil, slow end
  if aborted then
    collect()
    return LIMITED, aborted, slow
  end
  if exiting then return EXITED, nil, slow end
  if ok then
    if real_type(result) == "function" then return OK, result, slow end
    return OK, nil, slow
  end
  if result == "not enough memory" then
    collect()
    return NO_MEMORY, result, slow
  end
  return FAILED, describe(result), slow
end

local function signal_exit()
  exiting = true
  real_error(EXIT, 0)
end

return {
  run = run, compile = compile, new_env = new_env, signal_exit = signal_exit, touch = touch,
  setmetatable = setmetatable,
}
"""
