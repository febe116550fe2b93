"""The minimal ngx API and cjson, as Kong snippets use them."""

from __future__ import annotations

import json

import pytest

from gateway.context import Exit, ResponseHead
from gateway.headers import Headers
from gateway.lua.sandbox import LuaRuntimeError
from tests.gateway.lua.lua_helpers import REQUEST_ID, compile_phase, make_ctx, run_lua


def test_ngx_var() -> None:
    ctx = make_ctx(path="/v1/chat", query="a=1", headers=[("X-Api-Key", "k")])
    result, _ = run_lua(
        "return kong.response.exit(200, { uri = ngx.var.request_uri, host = ngx.var.host,"
        " ip = ngx.var.remote_addr, key = ngx.var.http_x_api_key, none = ngx.var.http_nope,"
        " method = ngx.var.request_method, args = ngx.var.args })",
        ctx,
    )
    assert result is not None
    assert json.loads(result.body) == {
        "uri": "/v1/chat?a=1",
        "host": "api.example.com",
        "ip": "203.0.113.7",
        "key": "k",
        "method": "GET",
        "args": "a=1",
    }


def test_ngx_var_args_and_upstream_uri_are_settable() -> None:
    ctx = make_ctx(path="/v1/chat", query="a=1")
    run_lua('ngx.var.args = "b=2"', ctx)
    assert ctx.upstream.query == "b=2"
    run_lua('ngx.var.upstream_uri = "/other?c=3"', ctx)
    assert (ctx.upstream.path, ctx.upstream.query) == ("/other", "c=3")


def test_ngx_status_then_exit_gives_kongs_default_error() -> None:
    result, _ = run_lua("ngx.status = 400 ngx.exit(ngx.status)")
    assert result is not None
    assert result.status == 400
    assert json.loads(result.body) == {"message": "Bad request", "request_id": REQUEST_ID}


def test_ngx_say_then_exit_sends_the_output() -> None:
    result, _ = run_lua(
        'ngx.status = 201 ngx.say("hello ", 42) ngx.print({"a", "b"}) ngx.exit(200)'
    )
    assert result == Exit(201, b"hello 42\nab", (("Content-Type", "text/plain"),))


def test_ngx_say_without_exit_is_the_response() -> None:
    result, _ = run_lua('ngx.say("only output")')
    assert result == Exit(200, b"only output\n", (("Content-Type", "text/plain"),))


def test_ngx_exit_ok_ends_the_phase_without_a_response() -> None:
    ctx = make_ctx()
    functions = compile_phase(
        "ngx.exit(ngx.OK)", 'kong.service.request.set_header("X-Second", "ran")'
    )
    assert functions.run("access", ctx) is None
    assert "X-Second" not in ctx.request.headers


def test_ngx_req_functions() -> None:
    ctx = make_ctx(headers=[("X-A", "1"), ("X-Drop", "d")], body=b"payload")
    result, _ = run_lua(
        """
        ngx.req.set_header("X-B", "2")
        ngx.req.set_header("X-Drop", nil)
        ngx.req.read_body()
        local h = ngx.req.get_headers()
        return kong.response.exit(200, { a = h["x-a"], b = h.x_b, body = ngx.req.get_body_data(),
                                         method = ngx.req.get_method() })
        """,
        ctx,
    )
    assert result is not None
    assert json.loads(result.body) == {"a": "1", "b": "2", "body": "payload", "method": "GET"}
    assert ctx.request.headers.items() == [("X-A", "1"), ("X-B", "2")]


def test_ngx_time_and_helpers() -> None:
    result, _ = run_lua(
        "return kong.response.exit(200, { now = type(ngx.now()), time = math.type(ngx.time()),"
        ' b64 = ngx.encode_base64("user:pass"), plain = ngx.decode_base64("dXNlcjpwYXNz"),'
        ' esc = ngx.escape_uri("a b/c"), unesc = ngx.unescape_uri("a%20b") })'
    )
    assert result is not None
    assert json.loads(result.body) == {
        "now": "number",
        "time": "integer",
        "b64": "dXNlcjpwYXNz",
        "plain": "user:pass",
        "esc": "a%20b%2Fc",
        "unesc": "a b",
    }


def test_ngx_header_sets_response_headers() -> None:
    ctx = make_ctx()
    run_lua('ngx.header["X-Powered-By"] = "lua"; ngx.header.content_type = "text/html"', ctx)
    assert ctx.response_headers.items() == [
        ("X-Powered-By", "lua"),
        ("content-type", "text/html"),
    ]


def test_body_filter_rewrites_chunks() -> None:
    functions = compile_phase(
        "ngx.arg[1] = string.upper(ngx.arg[1])"
        " if ngx.arg[2] then ngx.arg[1] = ngx.arg[1] .. '!' end",
        phase="body_filter",
    )
    ctx = make_ctx()
    ctx.response = ResponseHead(200, Headers())
    assert functions.filter_body(ctx, b"hello ", False) == b"HELLO "
    assert functions.filter_body(ctx, b"world", True) == b"WORLD!"


def test_cjson_round_trip_and_null() -> None:
    result, _ = run_lua(
        """
        local cjson = require "cjson"
        local t = cjson.decode('{"a":[1,2.5,"x"],"n":null,"o":{}}')
        local ok = t.n == cjson.null and t.n == ngx.null
        return kong.response.exit(200, cjson.encode({ back = t, ok = ok, e = cjson.empty_array }),
                                  { ["Content-Type"] = "application/json" })
        """
    )
    assert result is not None
    assert json.loads(result.body) == {
        "back": {"a": [1, 2.5, "x"], "n": None, "o": {}},
        "ok": True,
        "e": [],
    }


def test_cjson_errors_and_safe_variant() -> None:
    message = "Expecting property name enclosed in double quotes at character 2"
    with pytest.raises(LuaRuntimeError, match=message):
        run_lua('require("cjson").decode("{bad")')
    result, _ = run_lua(
        'local v, err = require("cjson.safe").decode("{bad")'
        " return kong.response.exit(200, { v = v, err = err })"
    )
    assert result is not None
    assert json.loads(result.body)["err"].startswith("Expecting property name")
