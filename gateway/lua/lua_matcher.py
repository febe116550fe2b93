"""A Lua port of Lua 5.4's pattern matcher (lstrlib.c), whose every step the sandbox can count.

`MATCHER_LUA` is privileged Lua run once per runtime, before the guards in `patterns.py`; it
returns the matcher as a table:

- `find(s, p, init, plain)`, `match(s, p, init)`, `gmatch(s, p, init)`, `gsub(s, p, repl, n)`:
  line-for-line ports of lstrlib's `str_find_aux`, `gmatch`, `gsub` and the matcher beneath
  them (classes of the C locale, sets, `%b`, `%f`, captures and back-references, the 200-deep
  recursion cap), with Lua 5.4's results and error messages. Arguments must already be checked
  (strings, integer `init`/`n`): the guards only call them after the C functions' own checks
  would pass.
- `c`: the C originals, captured before anything replaces them.

Run it with `runtime.execute(MATCHER_LUA, plain_find)`: a plain `find` uses `plain_find`
(Python's `bytes.find`, linear time) when given, else a Lua loop.
"""

from __future__ import annotations

MATCHER_LUA = b"""
local py_find = ...   -- bytes.find from Python (linear time), or nil
local type, tostring, error, pcall = type, tostring, error, pcall
local c_find, c_match, c_gmatch, c_gsub, c_rep = string.find, string.match, string.gmatch,
  string.gsub, string.rep
local byte, sub, concat = string.byte, string.sub, table.concat
-- Calls that go straight to C keep the original's name in argument errors ("to 'find'").
local C = { find = c_find, match = c_match, gmatch = c_gmatch, gsub = c_gsub, rep = c_rep }

local ESC, LBRACKET, RBRACKET, CARET, DASH = 37, 91, 93, 94, 45
local CAP_UNFINISHED, CAP_POSITION, MAXCAPTURES, MAXDEPTH = -1, -2, 32, 200

-- Character classes of the C locale, as 256-entry lookup tables.
local CLASSES = {}
local function class_table(pred)
  local t = {}
  for c = 0, 255 do t[c] = pred(c) end
  return t
end
local function alpha(c) return (c >= 65 and c <= 90) or (c >= 97 and c <= 122) end
local function digit(c) return c >= 48 and c <= 57 end
CLASSES[97] = class_table(alpha)                                            -- a
CLASSES[99] = class_table(function(c) return c < 32 or c == 127 end)        -- c
CLASSES[100] = class_table(digit)                                           -- d
CLASSES[103] = class_table(function(c) return c >= 33 and c <= 126 end)     -- g
CLASSES[108] = class_table(function(c) return c >= 97 and c <= 122 end)     -- l
CLASSES[112] = class_table(function(c)                                      -- p
  return (c >= 33 and c <= 47) or (c >= 58 and c <= 64) or (c >= 91 and c <= 96)
    or (c >= 123 and c <= 126)
end)
CLASSES[115] = class_table(function(c) return c == 32 or (c >= 9 and c <= 13) end) -- s
CLASSES[117] = class_table(function(c) return c >= 65 and c <= 90 end)      -- u
CLASSES[119] = class_table(function(c) return alpha(c) or digit(c) end)     -- w
CLASSES[120] = class_table(function(c)                                      -- x
  return digit(c) or (c >= 65 and c <= 70) or (c >= 97 and c <= 102)
end)
CLASSES[122] = class_table(function(c) return c == 0 end)                   -- z (deprecated)

local function match_class(c, cl)
  local t = CLASSES[cl]
  if t then return t[c] end
  t = CLASSES[cl + 32]              -- upper-case class letter: the complement
  if cl >= 65 and cl <= 90 and t then return not t[c] end
  return cl == c
end

-- The matcher: a port of lstrlib.c (Lua 5.4). Positions are 1-based indices into ms.src;
-- ms.src_end is #src + 1 (one past the end, like the C pointer).

local function class_end(ms, p)
  local pat = ms.pat
  local c = byte(pat, p)
  p = p + 1
  if c == ESC then
    if p >= ms.p_end then error("malformed pattern (ends with '%')", 0) end
    return p + 1
  elseif c == LBRACKET then
    if byte(pat, p) == CARET then p = p + 1 end
    repeat
      if p >= ms.p_end then error("malformed pattern (missing ']')", 0) end
      local cc = byte(pat, p)
      p = p + 1
      if cc == ESC and p < ms.p_end then p = p + 1 end
    until byte(pat, p) == RBRACKET
    return p + 1
  end
  return p
end

local function match_bracket_class(ms, c, p, ec)
  local pat = ms.pat
  local sig = true
  if byte(pat, p + 1) == CARET then
    sig = false
    p = p + 1
  end
  p = p + 1
  while p < ec do
    local pc = byte(pat, p)
    if pc == ESC then
      p = p + 1
      if match_class(c, byte(pat, p)) then return sig end
    elseif byte(pat, p + 1) == DASH and p + 2 < ec then
      p = p + 2
      if pc <= c and c <= byte(pat, p) then return sig end
    elseif pc == c then
      return sig
    end
    p = p + 1
  end
  return not sig
end

local function single_match(ms, s, p, ep)
  if s >= ms.src_end then return false end
  local c = byte(ms.src, s)
  local pc = byte(ms.pat, p)
  if pc == 46 then return true end                   -- '.'
  if pc == ESC then return match_class(c, byte(ms.pat, p + 1)) end
  if pc == LBRACKET then return match_bracket_class(ms, c, p, ep - 1) end
  return pc == c
end

local do_match

local function match_balance(ms, s, p)
  if p >= ms.p_end - 1 then error("malformed pattern (missing arguments to '%b')", 0) end
  local src = ms.src
  if s >= ms.src_end or byte(src, s) ~= byte(ms.pat, p) then return nil end
  local b, e = byte(ms.pat, p), byte(ms.pat, p + 1)
  local cont = 1
  s = s + 1
  while s < ms.src_end do
    local c = byte(src, s)
    if c == e then
      cont = cont - 1
      if cont == 0 then return s + 1 end
    elseif c == b then
      cont = cont + 1
    end
    s = s + 1
  end
  return nil
end

local function max_expand(ms, s, p, ep)
  local i = 0
  while single_match(ms, s + i, p, ep) do i = i + 1 end
  while i >= 0 do
    local res = do_match(ms, s + i, ep + 1)
    if res then return res end
    i = i - 1
  end
  return nil
end

local function min_expand(ms, s, p, ep)
  while true do
    local res = do_match(ms, s, ep + 1)
    if res then return res end
    if single_match(ms, s, p, ep) then s = s + 1 else return nil end
  end
end

local function start_capture(ms, s, p, what)
  local level = ms.level + 1
  if level > MAXCAPTURES then error("too many captures", 0) end
  ms.cinit[level], ms.clen[level], ms.level = s, what, level
  local res = do_match(ms, s, p)
  if not res then ms.level = ms.level - 1 end
  return res
end

local function end_capture(ms, s, p)
  local l
  for i = ms.level, 1, -1 do
    if ms.clen[i] == CAP_UNFINISHED then l = i break end
  end
  if not l then error("invalid pattern capture", 0) end
  ms.clen[l] = s - ms.cinit[l]
  local res = do_match(ms, s, p)
  if not res then ms.clen[l] = CAP_UNFINISHED end
  return res
end

local function check_capture(ms, l)
  l = l - 48                                         -- '1' is capture 1
  if l < 1 or l > ms.level or ms.clen[l] == CAP_UNFINISHED then
    error("invalid capture index %" .. l, 0)
  end
  return l
end

local function match_capture(ms, s, l)
  l = check_capture(ms, l)
  local len, init = ms.clen[l], ms.cinit[l]
  if ms.src_end - s >= len and sub(ms.src, init, init + len - 1) == sub(ms.src, s, s + len - 1) then
    return s + len
  end
  return nil
end

function do_match(ms, s, p)
  ms.depth = ms.depth - 1
  if ms.depth == 0 then error("pattern too complex", 0) end
  local pat, p_end = ms.pat, ms.p_end
  while p < p_end do
    local pc = byte(pat, p)
    local default = false
    if pc == 40 then                                   -- '('
      if byte(pat, p + 1) == 41 then s = start_capture(ms, s, p + 2, CAP_POSITION)
      else s = start_capture(ms, s, p + 1, CAP_UNFINISHED) end
      break
    elseif pc == 41 then                               -- ')'
      s = end_capture(ms, s, p + 1)
      break
    elseif pc == 36 and p + 1 == p_end then            -- '$' at the end
      if s ~= ms.src_end then s = nil end
      break
    elseif pc == ESC then
      local nc = byte(pat, p + 1)
      if nc == 98 then                                 -- %b
        s = match_balance(ms, s, p + 2)
        if not s then break end
        p = p + 4
      elseif nc == 102 then                            -- %f
        p = p + 2
        if byte(pat, p) ~= LBRACKET then error("missing '[' after '%f' in pattern", 0) end
        local ep = class_end(ms, p)
        local prev = s == 1 and 0 or byte(ms.src, s - 1)
        local cur = s < ms.src_end and byte(ms.src, s) or 0
        if match_bracket_class(ms, prev, p, ep - 1) or not match_bracket_class(ms, cur, p, ep - 1)
        then
          s = nil
          break
        end
        p = ep
      elseif nc and nc >= 48 and nc <= 57 then         -- back-reference %0-%9
        s = match_capture(ms, s, nc)
        if not s then break end
        p = p + 2
      else
        default = true
      end
    else
      default = true
    end
    if default then
      local ep = class_end(ms, p)
      local epc = byte(pat, ep)
      if not single_match(ms, s, p, ep) then
        if epc == 42 or epc == 63 or epc == 45 then    -- '*', '?', '-': zero matches is fine
          p = ep + 1
        else
          s = nil
          break
        end
      elseif epc == 63 then                            -- '?'
        local res = do_match(ms, s + 1, ep + 1)
        if res then
          s = res
          break
        end
        p = ep + 1
      elseif epc == 43 then                            -- '+'
        s = max_expand(ms, s + 1, p, ep)
        break
      elseif epc == 42 then                            -- '*'
        s = max_expand(ms, s, p, ep)
        break
      elseif epc == 45 then                            -- '-'
        s = min_expand(ms, s, p, ep)
        break
      else
        s = s + 1
        p = ep
      end
    end
  end
  ms.depth = ms.depth + 1
  return s
end

local function new_state(src, pat, p_start)
  return { src = src, src_end = #src + 1, pat = pat, p_end = #pat + 1, p_start = p_start,
           level = 0, cinit = {}, clen = {}, depth = MAXDEPTH }
end

local function one_capture(ms, i, s, e)
  if i > ms.level then
    if i ~= 1 then error("invalid capture index %" .. i, 0) end
    return sub(ms.src, s, e - 1)
  end
  local len = ms.clen[i]
  if len == CAP_UNFINISHED then error("unfinished capture", 0) end
  if len == CAP_POSITION then return ms.cinit[i] end
  return sub(ms.src, ms.cinit[i], ms.cinit[i] + len - 1)
end

local function captures(ms, s, e, whole)
  local n = ms.level
  if n == 0 and whole then return sub(ms.src, s, e - 1) end
  local out = {}
  for i = 1, n do out[i] = one_capture(ms, i, s, e) end
  return table.unpack(out, 1, n)
end

local function start_at(init, len)
  if init == nil then return 1 end
  if init > 0 then return init end
  if init == 0 or init < -len then return 1 end
  return len + init + 1
end

local function lua_find_aux(find, s, p, init, plain)
  local ls = #s
  init = start_at(init, ls)
  if init > ls + 1 then return nil end
  if find and (plain or not c_find(p, "[%^%$%*%+%?%.%(%)%[%]%%%-]")) then
    local lp = #p
    if py_find then
      local i = py_find(s, p, init)
      if i then return i, i + lp - 1 end
      return nil
    end
    for i = init, ls - lp + 1 do
      if sub(s, i, i + lp - 1) == p then return i, i + lp - 1 end
    end
    return nil
  end
  local anchor = byte(p, 1) == CARET
  local ms = new_state(s, p, anchor and 2 or 1)
  local s1 = init
  repeat
    ms.level, ms.depth = 0, MAXDEPTH
    local e = do_match(ms, s1, ms.p_start)
    if e then
      if find then return s1, e - 1, captures(ms, s1, e, false) end
      return captures(ms, s1, e, true)
    end
    s1 = s1 + 1
  until s1 > ms.src_end or anchor
  return nil
end

local function gmatch_step(ms, pos, last)
  for src = pos, ms.src_end do
    ms.level, ms.depth = 0, MAXDEPTH
    local e = do_match(ms, src, 1)
    if e and e ~= last then return e, captures(ms, src, e, true) end
  end
  return nil
end

local function lua_gmatch(s, p, init)
  local ls = #s
  local pos = start_at(init, ls)
  if pos > ls + 1 then pos = ls + 1 end
  local ms = new_state(s, p, 1)
  local last
  return function()
    local r = table.pack(pcall(gmatch_step, ms, pos, last))
    if not r[1] then
      -- As from C: a pattern error raised by the iterator names the line of the for loop.
      local err = r[2]
      if type(err) == "string" and err ~= "not enough memory" then error(err, 2) end
      error(err, 0)
    end
    local e = r[2]
    if not e then
      pos = ms.src_end + 1
      return nil
    end
    pos, last = e, e
    return table.unpack(r, 3, r.n)
  end
end

local function add_string(ms, out, s, e, repl)
  local i, lr = 1, #repl
  while i <= lr do
    local c = byte(repl, i)
    if c == ESC then
      i = i + 1
      local d = byte(repl, i)
      if d == ESC then
        out[#out + 1] = "%"
      elseif d and d >= 48 and d <= 57 then
        if d == 48 then out[#out + 1] = sub(ms.src, s, e - 1)
        else out[#out + 1] = tostring(one_capture(ms, d - 48, s, e)) end
      else
        error("invalid use of '%' in replacement string", 0)
      end
    else
      out[#out + 1] = sub(repl, i, i)
    end
    i = i + 1
  end
end

local function add_value(ms, out, s, e, repl, kind)
  local value
  if kind == "function" then
    value = repl(captures(ms, s, e, true))
  elseif kind == "table" then
    value = repl[one_capture(ms, 1, s, e)]
  else
    add_string(ms, out, s, e, tostring(repl))
    return true
  end
  if not value then
    out[#out + 1] = sub(ms.src, s, e - 1)
    return false
  end
  local vt = type(value)
  if vt ~= "string" and vt ~= "number" then
    error("invalid replacement value (a " .. vt .. ")", 0)
  end
  out[#out + 1] = tostring(value)
  return true
end

local function lua_gsub(src, p, repl, max_n)
  local kind = type(repl)
  local anchor = byte(p, 1) == CARET
  local ms = new_state(src, p, anchor and 2 or 1)
  max_n = max_n or #src + 1
  local out, n, pos, last, changed = {}, 0, 1, nil, false
  while n < max_n do
    ms.level, ms.depth = 0, MAXDEPTH
    local e = do_match(ms, pos, ms.p_start)
    if e and e ~= last then
      n = n + 1
      changed = add_value(ms, out, pos, e, repl, kind) or changed
      pos, last = e, e
    elseif pos < ms.src_end then
      out[#out + 1] = sub(src, pos, pos)
      pos = pos + 1
    else
      break
    end
    if anchor then break end
  end
  if not changed then return src, n end
  out[#out + 1] = sub(src, pos)
  return concat(out), n
end

return {
  find = function(s, p, init, plain) return lua_find_aux(true, s, p, init, plain) end,
  match = function(s, p, init) return lua_find_aux(false, s, p, init, false) end,
  gmatch = lua_gmatch,
  gsub = lua_gsub,
  c = C,
}
"""
