"""kong.response.*, kong.ctx, kong.client and kong.log from Lua."""

from __future__ import annotations

import json
import logging

import pytest

from gateway.context import ConsumerInfo, CredentialInfo, Exit, ResponseHead
from gateway.headers import Headers
from gateway.lua.sandbox import LuaRuntimeError
from tests.gateway.lua.lua_helpers import REQUEST_ID, compile_phase, make_ctx, run_lua

JSON = ("Content-Type", "application/json; charset=utf-8")


def test_exit_with_table_body_is_json_without_request_id() -> None:
    result, ctx = run_lua(
        'return kong.response.exit(403, { message = "Forbidden here", codes = { 1, 2 } },'
        ' { ["X-Reason"] = "policy" })'
    )
    assert result is not None
    assert result.status == 403
    assert json.loads(result.body) == {"message": "Forbidden here", "codes": [1, 2]}
    assert result.headers == (JSON, ("X-Reason", "policy"))
    assert ctx.response_source == "exit"


def test_exit_with_string_body_is_sent_as_is() -> None:
    result, _ = run_lua(
        'return kong.response.exit(200, "plain text", { ["Content-Type"] = "text/plain" })'
    )
    assert result == Exit(200, b"plain text", (("Content-Type", "text/plain"),))


def test_exit_without_body() -> None:
    result, _ = run_lua("return kong.response.exit(204)")
    assert result == Exit(204, b"", ())


def test_exit_table_body_with_explicit_content_type_keeps_it() -> None:
    result, _ = run_lua(
        "return kong.response.exit(200, { a = 1 },"
        ' { ["Content-Type"] = "application/vnd.api+json" })'
    )
    assert result == Exit(200, b'{"a":1}', (("Content-Type", "application/vnd.api+json"),))


def test_exit_ends_the_chunk_even_without_return() -> None:
    ctx = make_ctx()
    result, _ = run_lua(
        'kong.response.exit(401) kong.service.request.set_header("X-After", "ran")', ctx
    )
    assert result == Exit(401, b"", ())
    assert "X-After" not in ctx.request.headers


def test_exit_cannot_be_swallowed_by_pcall() -> None:
    ctx = make_ctx()
    result, _ = run_lua(
        'pcall(kong.response.exit, 418, "teapot") kong.service.request.set_header("X-After", "1")',
        ctx,
    )
    assert result == Exit(418, b"teapot", ())
    assert "X-After" not in ctx.request.headers


def test_error_uses_kongs_template() -> None:
    result, _ = run_lua('return kong.response.error(403, "Access denied")')
    assert result is not None
    assert result.status == 403
    assert (
        result.body
        == ('{\n  "message":"Access denied",\n  "request_id":"' + REQUEST_ID + '"\n}').encode()
    )
    assert result.headers == (JSON,)


def test_error_default_message_and_text_accept() -> None:
    ctx = make_ctx(headers=[("Accept", "text/plain")])
    result, _ = run_lua("return kong.response.error(429)", ctx)
    assert result is not None
    assert result.body == f"Too many requests\nrequest_id: {REQUEST_ID}\n".encode()


@pytest.mark.parametrize(
    ("code", "message"),
    [
        ("kong.response.exit(99)", "code must be an integer between 100 and 599"),
        ("kong.response.error(302)", "code must be an integer between 400 and 599"),
        ("kong.response.exit(200, true)", "body must be a nil, string or table"),
        ("kong.response.exit(200, { f = print })", "Cannot serialise function"),
    ],
)
def test_exit_argument_errors(code: str, message: str) -> None:
    with pytest.raises(LuaRuntimeError, match=message):
        run_lua(code)


def test_response_headers_before_the_response_exists() -> None:
    ctx = make_ctx()
    run_lua(
        """
        kong.response.set_header("X-One", "1")
        kong.response.add_header("X-Two", "a")
        kong.response.add_header("X-Two", "b")
        kong.response.set_header("X-Gone", "x")
        kong.response.clear_header("x-gone")
        """,
        ctx,
    )
    assert ctx.response_headers.items() == [("X-One", "1"), ("X-Two", "a"), ("X-Two", "b")]


def test_header_filter_changes_the_response_head() -> None:
    head = ResponseHead(200, Headers([("Server", "upstream"), ("X-Up", "1")]))
    ctx = make_ctx()
    run_lua(
        """
        kong.response.set_header("X-Status-Seen", kong.response.get_status())
        kong.response.clear_header("Server")
        kong.response.set_header("X-Up", kong.response.get_header("x_up") .. "+lua")
        """,
        ctx,
        phase="header_filter",
        head=head,
    )
    assert head.headers.items() == [("X-Up", "1+lua"), ("X-Status-Seen", "200")]


def test_exit_is_refused_outside_rewrite_and_access() -> None:
    with pytest.raises(LuaRuntimeError, match="cannot be called in log phase"):
        run_lua("kong.response.exit(200)", phase="log")


def test_ctx_shared_is_seen_by_python_and_kept_across_phases() -> None:
    functions = compile_phase(
        'kong.ctx.shared.user = "alice"; kong.ctx.shared.n = (kong.ctx.shared.n or 0) + 1;'
        " kong.ctx.shared.t = kong.ctx.shared.t or { hits = 0 };"
        " kong.ctx.shared.t.hits = kong.ctx.shared.t.hits + 1;"
        " kong.ctx.plugin.mine = kong.ctx.shared.t.hits"
    )
    ctx = make_ctx()
    ctx.shared["from_python"] = "py"
    functions.run("access", ctx)
    functions.run("access", ctx)
    assert ctx.shared["user"] == "alice"
    assert ctx.shared["n"] == 2
    assert ctx.plugin_state("plugin-1")["mine"] == 2
    result, _ = run_lua("return kong.response.exit(200, kong.ctx.shared.from_python)", ctx)
    assert result is not None and result.body == b"py"


def test_client_consumer_and_credential() -> None:
    ctx = make_ctx()
    ctx.consumer = ConsumerInfo(id="c-1", username="alice")
    ctx.credential = CredentialInfo(id="k-1", consumer_id="c-1")
    result, _ = run_lua(
        "return kong.response.exit(200, { consumer = kong.client.get_consumer(),"
        " credential = kong.client.get_credential() })",
        ctx,
    )
    assert result is not None
    assert json.loads(result.body) == {
        "consumer": {"id": "c-1", "username": "alice"},
        "credential": {"id": "k-1", "consumer": {"id": "c-1"}},
    }


def test_kong_log_goes_to_python_logging(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="lockgate.lua")
    run_lua(
        'kong.log.err("bad ", 42, " ", nil) kong.log("hello") kong.log.debug("dbg")'
        ' ngx.log(ngx.WARN, "from ngx") print("a", 1)'
    )
    assert [(r.levelno, r.getMessage()) for r in caplog.records] == [
        (logging.ERROR, "[pre-function] bad 42 nil"),
        (logging.INFO, "[pre-function] hello"),
        (logging.DEBUG, "[pre-function] dbg"),
        (logging.WARNING, "[pre-function] from ngx"),
        (logging.INFO, "[pre-function] a\t1"),
    ]


def test_set_serialize_value_modes() -> None:
    ctx = make_ctx()
    run_lua(
        'kong.log.set_serialize_value("ai.tag", "x")'
        ' kong.log.set_serialize_value("ai.tag", "y", { mode = "add" })'
        ' kong.log.set_serialize_value("other", { 1, 2 }, { mode = "replace" })'
        ' kong.log.set_serialize_value("n", 3)',
        ctx,
    )
    assert ctx.log_fields == {"ai.tag": "x", "n": 3}
