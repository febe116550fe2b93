"""Sandboxed Lua for the serverless-functions plugins (pre-function, post-function).

- `sandbox`: the lupa runtime, Kong's safe globals, CPU/memory limits (`LuaSandbox`,
  `SandboxLimits`, `check_syntax`, the `LuaError` family).
- `patterns` (+ `lua_matcher`): bounded `string.find/match/gmatch/gsub/rep`, so that work done
  inside C stays within the CPU budget.
- `pdk` (+ `pdk_request`, `pdk_service`, `pdk_response`, `pdk_router`, `pdk_ngx`, `pdk_lua`):
  the `kong` PDK and minimal `ngx`, bound to one `RequestContext` per call.
- `serverless`: config model, compile-once handlers and the plugin base shared by
  pre-function and post-function.
"""
