"""kong.router, kong.service.set_target, forwarded path/prefix, ngx.ctx, and kong.ctx across
plugin instances (each instance has its own Lua runtime)."""

from __future__ import annotations

import json

import pytest

from gateway.entities import Ref, Route, Service
from gateway.lua.sandbox import LuaRuntimeError
from gateway.lua.serverless import CompiledFunctions
from tests.gateway.lua.lua_helpers import make_ctx, run_lua

SERVICE = Service(name="llm", host="api.openai.com", port=443, protocol="https", path="/v1")
ROUTE = Route(name="chat", paths=["/openai"], service=Ref(id=SERVICE.id), strip_path=True)


def routed_ctx() -> object:
    ctx = make_ctx(headers=[("X-Forwarded-Prefix", "/openai")])
    ctx.route, ctx.service = ROUTE, SERVICE
    return ctx


def test_get_route_and_get_service_are_the_entities() -> None:
    result, _ = run_lua(
        "local r, s = kong.router.get_route(), kong.router.get_service()"
        " return kong.response.exit(200, { route = r, service = s,"
        " same = r.service.id == s.id, nulls = r.hosts == nil })",
        routed_ctx(),  # type: ignore[arg-type]
    )
    assert result is not None
    body = json.loads(result.body)
    assert body["same"] is True and body["nulls"] is True
    assert body["route"]["name"] == "chat"
    assert body["route"]["paths"] == ["/openai"]
    assert body["route"]["strip_path"] is True
    assert body["route"]["id"] == ROUTE.id
    assert body["service"] == {
        k: v for k, v in SERVICE.model_dump(mode="json").items() if v is not None
    }


def test_router_is_nil_before_routing() -> None:
    result, _ = run_lua(
        "return kong.response.exit(200, { r = tostring(kong.router.get_route()),"
        " s = tostring(kong.router.get_service()) })"
    )
    assert result is not None
    assert json.loads(result.body) == {"r": "nil", "s": "nil"}


def test_a_changed_route_table_changes_nothing() -> None:
    ctx = routed_ctx()
    result, _ = run_lua(
        "kong.router.get_route().name = 'changed'"
        " return kong.response.exit(200, { name = kong.router.get_route().name })",
        ctx,  # type: ignore[arg-type]
    )
    assert result is not None and json.loads(result.body) == {"name": "chat"}
    assert ROUTE.name == "chat"


def test_forwarded_path_and_prefix() -> None:
    code = (
        "return kong.response.exit(200, { path = kong.request.get_forwarded_path(),"
        " prefix = kong.request.get_forwarded_prefix() or 'none' })"
    )
    routed, _ = run_lua(code, routed_ctx())  # type: ignore[arg-type]
    assert routed is not None
    assert json.loads(routed.body) == {"path": "/v1/chat/completions", "prefix": "/openai"}
    # Before routing, a client's X-Forwarded-Prefix is not trusted.
    unrouted, _ = run_lua(code, make_ctx(headers=[("X-Forwarded-Prefix", "/evil")]))
    assert unrouted is not None
    assert json.loads(unrouted.body) == {"path": "/v1/chat/completions", "prefix": "none"}


def test_set_target_changes_host_and_port() -> None:
    _, ctx = run_lua("kong.service.set_target('10.0.0.5', 8080)")
    assert (ctx.upstream.host, ctx.upstream.port) == ("10.0.0.5", 8080)
    with pytest.raises(LuaRuntimeError, match="port must be an integer"):
        run_lua("kong.service.set_target('h', 70000)")
    with pytest.raises(LuaRuntimeError, match="invalid host"):
        run_lua("kong.service.set_target('h/x', 80)")
    with pytest.raises(LuaRuntimeError, match="cannot be called in log phase"):
        run_lua("kong.service.set_target('h', 80)", phase="log")


def test_ngx_ctx_is_per_request_and_shared_by_instances() -> None:
    first = CompiledFunctions("pre-function", "a", {"access": ["ngx.ctx.user = 'alice'"]})
    second = CompiledFunctions(
        "post-function",
        "b",
        {"access": ["kong.service.request.set_header('x-user', ngx.ctx.user or 'none')"]},
    )
    ctx = make_ctx()
    first.run("access", ctx)
    second.run("access", ctx)
    assert ctx.request.headers.get("x-user") == "alice"
    fresh = make_ctx()
    second.run("access", fresh)
    assert fresh.request.headers.get("x-user") == "none"


def test_tables_in_kong_ctx_shared_cross_plugin_instances_as_copies() -> None:
    writer = CompiledFunctions(
        "pre-function",
        "a",
        {
            "access": [
                "kong.ctx.shared.t = { n = 1, list = { 'x', 'y' }, fn = print,"
                " deep = { ok = true } }"
                " kong.ctx.shared.t.n = 2"
            ]
        },
    )
    reader = CompiledFunctions(
        "post-function",
        "b",
        {
            "access": [
                "local t = kong.ctx.shared.t"
                " t.n = 99"  # a copy: the writer's table is unchanged
                " return kong.response.exit(200, { n = t.n, list = t.list, fn = type(t.fn),"
                " deep = t.deep.ok })"
            ]
        },
    )
    check = CompiledFunctions(
        "pre-function",
        "a2",
        {"access": ["return kong.response.exit(200, { n = kong.ctx.shared.t.n })"]},
    )
    ctx = make_ctx()
    writer.run("access", ctx)
    result = reader.run("access", ctx)
    assert result is not None
    assert json.loads(result.body) == {"n": 99, "list": ["x", "y"], "fn": "nil", "deep": True}
    again = check.run("access", ctx)
    assert again is not None and json.loads(again.body) == {"n": 2}


_REQUIRED = """
kong.request.get_header kong.request.get_headers kong.request.get_method kong.request.get_path
kong.request.get_raw_path kong.request.get_query kong.request.get_raw_query kong.request.get_body
kong.request.get_raw_body kong.request.get_scheme kong.request.get_host kong.request.get_port
kong.request.get_forwarded_scheme kong.request.get_forwarded_host kong.request.get_forwarded_port
kong.request.get_forwarded_path kong.request.get_forwarded_prefix kong.request.get_http_version
kong.request.get_start_time kong.request.get_id kong.request.get_query_arg
kong.request.get_path_with_query
kong.service.request.set_header kong.service.request.add_header kong.service.request.clear_header
kong.service.request.set_headers kong.service.request.set_path kong.service.request.set_query
kong.service.request.set_raw_query kong.service.request.set_method kong.service.request.set_scheme
kong.service.request.set_body kong.service.request.set_raw_body kong.service.set_target
kong.response.exit kong.response.error kong.response.get_header kong.response.get_headers
kong.response.set_header kong.response.add_header kong.response.clear_header
kong.response.set_headers kong.response.get_status kong.response.set_status
kong.response.get_source kong.response.get_raw_body kong.response.set_raw_body
kong.client.get_consumer kong.client.get_credential kong.client.get_ip kong.client.get_forwarded_ip
kong.router.get_route kong.router.get_service
kong.log.err kong.log.warn kong.log.notice kong.log.info kong.log.debug kong.log.crit
kong.log.alert kong.log.inspect kong.log.set_serialize_value kong.log.deprecation
ngx.say ngx.print ngx.exit ngx.now ngx.time ngx.log ngx.req.get_headers ngx.req.set_header
ngx.req.read_body ngx.req.get_body_data ngx.worker.pid
"""
REQUIRED_FUNCTIONS = _REQUIRED.split()


def test_every_pdk_function_snippets_rely_on_exists() -> None:
    names = ", ".join(f"'{name}'" for name in REQUIRED_FUNCTIONS)
    result, _ = run_lua(
        f"""
        local missing = {{}}
        for _, name in ipairs({{ {names} }}) do
          local value = _G
          for part in name:gmatch("[^.]+") do value = value and value[part] end
          if type(value) ~= "function" then missing[#missing + 1] = name end
        end
        local extra = {{ kong.ctx.shared, kong.ctx.plugin, ngx.var, ngx.ctx, ngx.arg, ngx.header }}
        return kong.response.exit(200, {{ missing = missing, tables = #extra,
          log_callable = pcall(kong.log, "x"), cjson = type(require("cjson").encode),
          status = type(ngx.status) }})
        """
    )
    assert result is not None
    assert json.loads(result.body) == {
        "missing": {},
        "tables": 6,
        "log_callable": True,
        "cjson": "function",
        "status": "number",
    }
