"""Lua side of the PDK: assembles `kong`, `ngx`, `require` and `print` from Python callables.

Runs once per sandbox with full privileges. It receives a flat table of dotted names to Python
callables (names starting with `_` are helpers, not placed), `signal_exit` from the prelude,
the JSON sentinels, the prelude's `touch` and the set of names that change nothing (every other
callable touches the call: it may then not be moved to a worker thread), and returns the globals
to add to every chunk's environment. Wrappers here
are the parts that must be Lua: metatables (header tables, ngx.var, ngx.status, kong.ctx
proxies, callable kong.log) and exits, which record the response in Python then unwind.
"""

from __future__ import annotations

PDK_LUA = b"""
local py, signal_exit, NULL, EMPTY_ARRAY, touch, pure = ...
local type, tostring, select, setmetatable, getmetatable, rawget, pairs, ipairs, error, next =
  type, tostring, select, setmetatable, getmetatable, rawget, pairs, ipairs, error, next
local concat, lower, gsub = table.concat, string.lower, string.gsub
local gmatch, sub = string.gmatch, string.sub

-- Python callables are userdata in Lua: hand out Lua closures instead, so that snippets see
-- functions (type(f) == "function") and never hold a Python object.
local function lua_function(fn) return function(...) return fn(...) end end
local function changing(fn) return function(...) touch() return fn(...) end end
for name, fn in pairs(py) do py[name] = pure[name] and lua_function(fn) or changing(fn) end

local root = { kong = { request = {}, response = {}, client = {}, service = { request = {} } },
               ngx = { req = {}, worker = {} } }
for name, fn in pairs(py) do
  if sub(name, 1, 1) ~= "_" then
    local node, last = root, nil
    for part in gmatch(name, "[^.]+") do
      if last then
        node[last] = node[last] or {}
        node = node[last]
      end
      last = part
    end
    node[last] = fn
  end
end
local kong, ngx = root.kong, root.ngx

local function stringify(sep, ...)
  local n = select("#", ...)
  local parts = { ... }
  for i = 1, n do parts[i] = tostring(parts[i]) end
  return concat(parts, sep, 1, n)
end

-- Header tables: lower-case keys; lookups ignore case and treat '_' like '-'.
local HEADERS_MT = { __index = function(t, k)
  if type(k) == "string" then
    local norm = gsub(lower(k), "_", "-")
    if norm ~= k then return rawget(t, norm) end
  end
end }
local function with_header_lookup(get)
  return function(...)
    local t, err = get(...)
    return setmetatable(t, HEADERS_MT), err
  end
end
kong.request.get_headers = with_header_lookup(kong.request.get_headers)
kong.response.get_headers = with_header_lookup(kong.response.get_headers)

local py_exit, py_error = py._exit, py._error
function kong.response.exit(status, body, headers)
  py_exit(status, body, headers)
  signal_exit()
end
function kong.response.error(status, message, headers)
  py_error(status, message, headers)
  signal_exit()
end

local arg_get, arg_set = py["_ngx.arg_get"], py["_ngx.arg_set"]
function kong.response.get_raw_body()
  if arg_get(2) then return arg_get(1) end
  return nil
end
function kong.response.set_raw_body(body)
  if type(body) ~= "string" then error("body must be a string", 2) end
  arg_set(1, body)
end

local py_log = py._log
local log = {}
for _, level in ipairs({ "alert", "crit", "err", "warn", "notice", "info", "debug" }) do
  log[level] = function(...) py_log(level, stringify("", ...)) end
end
function log.inspect(...) py_log("debug", stringify(" ", ...)) end
function log.deprecation(...) py_log("warn", stringify("", ...)) end
log.set_serialize_value = py._set_serialize_value
local function log_call(_, ...) py_log("notice", stringify("", ...)) end
local function print(...) py_log("notice", stringify("\\t", ...)) end

local ctx_get, ctx_set = py._ctx_get, py._ctx_set
local function ctx_proxy(which)
  return setmetatable({}, {
    __index = function(_, k)
      local value = ctx_get(which, k)
      -- A table kept in kong.ctx outlives the call: changing it is a change.
      if type(value) == "table" then touch() end
      return value
    end,
    __newindex = function(_, k, v) ctx_set(which, k, v) end,
  })
end
kong.ctx = { shared = ctx_proxy("shared"), plugin = ctx_proxy("plugin") }
ngx.ctx = ctx_proxy("ngx")

-- ngx
local var_get, var_set = py["_ngx.var_get"], py["_ngx.var_set"]
ngx.var = setmetatable({}, {
  __index = function(_, k) return var_get(k) end,
  __newindex = function(_, k, v) var_set(k, v) end,
})
ngx.arg = setmetatable({}, {
  __index = function(_, k) return arg_get(k) end,
  __newindex = function(_, k, v) arg_set(k, v) end,
})
ngx.header = setmetatable({}, {
  __index = function(_, k) return kong.response.get_header(gsub(k, "_", "-")) end,
  __newindex = function(_, k, v)
    k = gsub(k, "_", "-")
    if v == nil then kong.response.clear_header(k) else kong.response.set_header(k, v) end
  end,
})

local function flatten(out, v)
  if type(v) == "table" then
    for i = 1, #v do flatten(out, v[i]) end
  elseif v == NULL then
    out[#out + 1] = "null"
  else
    out[#out + 1] = tostring(v)
  end
end
local function output(...)
  local out = {}
  for i = 1, select("#", ...) do flatten(out, (select(i, ...))) end
  return concat(out)
end
local py_out, py_ngx_exit = py["_ngx.out"], py["_ngx.exit"]
function ngx.print(...) py_out(output(...)) return 1 end
function ngx.say(...) py_out(output(...) .. "\\n") return 1 end
function ngx.flush() return 1 end
function ngx.exit(status)
  py_ngx_exit(status)
  signal_exit()
end

local LEVELS = { [0] = "alert", "alert", "alert", "crit", "err", "warn", "notice", "info", "debug" }
function ngx.log(level, ...) py_log(LEVELS[level] or "notice", stringify("", ...)) end
local constants = {
  STDERR = 0, EMERG = 1, ALERT = 2, CRIT = 3, ERR = 4, WARN = 5, NOTICE = 6, INFO = 7, DEBUG = 8,
  OK = 0, ERROR = -1, AGAIN = -2, DONE = -4, DECLINED = -5,
  HTTP_OK = 200, HTTP_CREATED = 201, HTTP_NO_CONTENT = 204, HTTP_MOVED_PERMANENTLY = 301,
  HTTP_MOVED_TEMPORARILY = 302, HTTP_NOT_MODIFIED = 304, HTTP_BAD_REQUEST = 400,
  HTTP_UNAUTHORIZED = 401, HTTP_FORBIDDEN = 403, HTTP_NOT_FOUND = 404, HTTP_NOT_ALLOWED = 405,
  HTTP_TOO_MANY_REQUESTS = 429, HTTP_INTERNAL_SERVER_ERROR = 500, HTTP_BAD_GATEWAY = 502,
  HTTP_SERVICE_UNAVAILABLE = 503, HTTP_GATEWAY_TIMEOUT = 504,
  HTTP_GET = "GET", HTTP_POST = "POST", HTTP_PUT = "PUT", HTTP_DELETE = "DELETE",
  HTTP_HEAD = "HEAD", HTTP_PATCH = "PATCH", HTTP_OPTIONS = "OPTIONS",
}
for k, v in pairs(constants) do ngx[k] = v end
ngx.null = NULL
ngx.worker.id = function() return 0 end
ngx.worker.count = function() return 1 end
function ngx.update_time() end

local req, service = ngx.req, kong.service.request
req.get_headers = kong.request.get_headers
req.get_method = kong.request.get_method
req.get_uri_args = kong.request.get_query
req.http_version = kong.request.get_http_version
req.set_method = service.set_method
req.set_uri_args = function(args)
  if type(args) == "string" then service.set_raw_query(args) else service.set_query(args) end
end
req.set_body_data = service.set_raw_body
req.clear_header = service.clear_header
function req.set_header(name, value)
  if value == nil then service.clear_header(name) else service.set_header(name, value) end
end
function req.read_body() end
function req.get_body_data()
  local body = kong.request.get_raw_body()
  if body == "" then return nil end
  return body
end
function req.start_time() return kong.request.get_start_time() / 1000 end


local function cjson_module(encode, decode)
  return {
    encode = encode, decode = decode, null = NULL, empty_array = EMPTY_ARRAY,
    encode_empty_table_as_object = function() end,
    decode_array_with_array_mt = function() end,
    encode_escape_forward_slash = function() end,
  }
end
local modules = {
  cjson = cjson_module(py["_cjson.encode"], py["_cjson.decode"]),
  ["cjson.safe"] = cjson_module(py["_cjson.safe_encode"], py["_cjson.safe_decode"]),
}
local function require(name)
  local module = modules[name]
  if module == nil then
    error("require '" .. tostring(name) .. "' not allowed within sandbox", 2)
  end
  return module
end

-- Read-only views: a chunk cannot replace a PDK function for later requests or other chunks
-- of the instance (Kong protects its PDK the same way). Tables with their own metatable (ngx.var,
-- kong.ctx.shared...) are already proxies that write through to the request.
local function deny(name)
  return function(_, k)
    error("attempt to change " .. name .. "." .. tostring(k) .. " (the PDK is read-only)", 2)
  end
end
local function readonly(t, name, mt)
  for k, v in pairs(t) do
    if type(v) == "table" and getmetatable(v) == nil then t[k] = readonly(v, name .. "." .. k) end
  end
  mt = mt or {}
  mt.__index = mt.__index or t
  mt.__newindex = mt.__newindex or deny(name)
  mt.__pairs = function() return next, t, nil end
  mt.__metatable = false
  return setmetatable({}, mt)
end

kong.log = readonly(log, "kong.log", { __call = log_call })
kong = readonly(kong, "kong")
for name, module in pairs(modules) do modules[name] = readonly(module, name) end

local status_get, status_set = py["_ngx.status_get"], py["_ngx.status_set"]
local ngx_fields = ngx
ngx = readonly(ngx_fields, "ngx", {
  __index = function(_, k)
    if k == "status" then return status_get() end
    return ngx_fields[k]
  end,
  __newindex = function(t, k, v)
    if k ~= "status" then
      error("attempt to change ngx." .. tostring(k) .. " (the PDK is read-only)", 2)
    end
    status_set(v)
  end,
})

return { kong = kong, ngx = ngx, require = require, print = print }
"""
