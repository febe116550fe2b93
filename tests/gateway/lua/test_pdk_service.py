"""kong.service.request.*: what the snippet changes is what goes upstream."""

from __future__ import annotations

import json

import pytest

from gateway.lua.sandbox import LuaRuntimeError
from tests.gateway.lua.lua_helpers import make_ctx, run_lua


def test_header_changes_land_in_the_live_request_headers() -> None:
    ctx = make_ctx(headers=[("X-Old", "1"), ("X-Keep", "k"), ("X-Drop", "d"), ("x-drop", "e")])
    run_lua(
        """
        kong.service.request.set_header("X-Old", "2")
        kong.service.request.add_header("X-Keep", "k2")
        kong.service.request.clear_header("x-drop")
        kong.service.request.set_header("X-Num", 42)
        kong.service.request.set_header("X-Bool", true)
        kong.service.request.set_header("X-Half", 10 / 2)
        kong.service.request.set_header("X-List", { "a", "b" })
        """,
        ctx,
    )
    assert ctx.request.headers.items() == [
        ("X-Old", "2"),
        ("X-Keep", "k"),
        ("X-Keep", "k2"),
        ("X-Num", "42"),
        ("X-Bool", "true"),
        ("X-Half", "5"),
        ("X-List", "a"),
        ("X-List", "b"),
    ]


def test_set_headers_overrides_only_named_headers() -> None:
    ctx = make_ctx(headers=[("X-A", "old"), ("X-Other", "o")])
    run_lua('kong.service.request.set_headers({ ["X-B"] = "b", ["X-A"] = "new" })', ctx)
    assert ctx.request.headers.items() == [("X-A", "new"), ("X-Other", "o"), ("X-B", "b")]


def test_set_host_header_also_sets_upstream_host() -> None:
    ctx = make_ctx(headers=[("Host", "api.example.com")])
    run_lua('kong.service.request.set_header("Host", "internal.example")', ctx)
    assert ctx.upstream.host_header == "internal.example"
    assert ctx.request.headers.get("host") == "internal.example"


def test_set_header_keeps_any_byte_and_any_case_of_host() -> None:
    ctx = make_ctx(headers=[("Host", "api.example.com")])
    run_lua(
        'kong.service.request.set_header("host", "internal.example")'
        ' kong.service.request.set_header("X-Bytes", "caf\\xc3\\xa9 \\xff")',
        ctx,
    )
    assert ctx.upstream.host_header == "internal.example"
    assert ctx.request.headers.items() == [
        ("host", "internal.example"),
        ("X-Bytes", "caf\xc3\xa9 \xff"),  # the wire bytes, latin-1 decoded
    ]


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ('kong.service.request.set_header("X-A", "a\\r\\nX-Injected: 1")', "line break"),
        ('kong.service.request.set_header("X-A", "a\\nb")', "line break"),
        ('kong.service.request.set_header("X-A", "a\\rb")', "line break"),
        ('kong.service.request.set_header("X-A: b", "v")', "invalid header name"),
        ('kong.service.request.set_header("X-A\\r\\nX-B", "v")', "invalid header name"),
        ('kong.service.request.set_header("", "v")', "invalid header name"),
        ('kong.service.request.set_header("X-A", nil)', 'invalid header value for "X-A"'),
        ("kong.service.request.set_header(nil, 'v')", "header name must be a string"),
        ('kong.service.request.set_path("no-slash")', "path must start with /"),
        ('kong.service.request.set_method("FETCH")', "invalid method: FETCH"),
    ],
)
def test_invalid_arguments_are_lua_errors(code: str, message: str) -> None:
    with pytest.raises(LuaRuntimeError, match=message):
        run_lua(code)


def test_path_query_method_go_to_upstream() -> None:
    ctx = make_ctx(method="GET", path="/v1/chat", query="a=1&drop=x&b=2&drop=y")
    run_lua(
        """
        kong.service.request.set_path("/v2/chat completions")
        kong.service.request.clear_query_arg("drop")
        kong.service.request.set_method("POST")
        """,
        ctx,
    )
    assert ctx.upstream.path == "/v2/chat%20completions"
    assert ctx.upstream.query == "a=1&b=2"
    assert ctx.upstream.method == "POST"
    assert (ctx.request.path, ctx.request.raw_query, ctx.request.method) == (
        "/v1/chat",
        "a=1&drop=x&b=2&drop=y",
        "GET",
    )


def test_set_query_sorts_keys_and_encodes_values() -> None:
    ctx = make_ctx()
    run_lua('kong.service.request.set_query({ z = "a b", a = { "1", "2" }, flag = true })', ctx)
    assert ctx.upstream.query == "a=1&a=2&flag&z=a%20b"
    run_lua('kong.service.request.set_raw_query("raw=%zz")', ctx)
    assert ctx.upstream.query == "raw=%zz"


def test_set_raw_body_replaces_body_and_framing_headers() -> None:
    ctx = make_ctx(
        method="POST",
        headers=[("Content-Length", "2"), ("Transfer-Encoding", "chunked")],
        body=b"{}",
    )
    run_lua('kong.service.request.set_raw_body("\\255hello")', ctx)
    assert ctx.upstream.body == b"\xffhello"
    assert ctx.request.headers.items() == [("Content-Length", "6")]
    assert ctx.request.body == b"{}"


def test_set_body_json_uses_request_content_type() -> None:
    ctx = make_ctx(method="POST", headers=[("Content-Type", "application/json")], body=b"{}")
    result, _ = run_lua(
        """
        local body = kong.request.get_body()
        body.model = "gpt-4o-mini"
        local ok, err = kong.service.request.set_body(body)
        return kong.response.exit(200, { ok = ok, err = err,
                                         seen = kong.request.get_body().model })
        """,
        ctx,
    )
    assert ctx.upstream.body == b'{"model":"gpt-4o-mini"}'
    assert result is not None
    assert json.loads(result.body) == {"ok": True, "seen": "gpt-4o-mini"}


def test_set_body_form_with_explicit_mimetype() -> None:
    ctx = make_ctx(method="POST")
    run_lua(
        'kong.service.request.set_body({ b = "2", a = "x y" },'
        ' "application/x-www-form-urlencoded")',
        ctx,
    )
    assert ctx.upstream.body == b"a=x%20y&b=2"
    assert ctx.request.headers.get("content-type") == "application/x-www-form-urlencoded"


def test_service_request_setters_refuse_response_phases() -> None:
    from gateway.context import ResponseHead
    from gateway.headers import Headers

    with pytest.raises(LuaRuntimeError, match="cannot be called in header_filter phase"):
        run_lua(
            'kong.service.request.set_header("X-A", "1")',
            phase="header_filter",
            head=ResponseHead(200, Headers()),
        )
