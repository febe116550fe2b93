"""Sandboxed Lua for the serverless-functions plugins (pre-function, post-function).

- `sandbox`: the lupa runtime, Kong's safe globals, CPU/memory limits (`LuaSandbox`,
  `SandboxLimits`, `check_syntax`, the `LuaError` family).
- `patterns` (+ `lua_matcher`): bounded `string.find/match/gmatch/gsub/rep`, so that work done
  inside C stays within the CPU budget.
- `pdk` (+ `pdk_request`, `pdk_service`, `pdk_response`, `pdk_router`, `pdk_ngx`, `pdk_lua`):
  the `kong` PDK and minimal `ngx`, bound to one `RequestContext` per call.
- `phases`: one runtime running the compiled chunks of some phases (Kong's two code styles).
- `offload`: the async phases of a runtime, inline on the event loop while fast, on a worker
  thread of their own once slow.
- `serverless`: config model, compile-once handlers and the plugin base shared by
  pre-function and post-function.
"""
