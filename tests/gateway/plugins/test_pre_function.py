"""pre-function: Kong's schema, the how-to snippet, both code styles, exits and errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.context import Exit, ResponseHead
from gateway.credentials import InMemoryCredentials
from gateway.entities import Plugin as PluginEntity
from gateway.headers import Headers
from gateway.lua.sandbox import LuaLimitError, LuaRuntimeError
from gateway.plugins.base import BuildContext, Handler
from gateway.plugins.pre_function import PLUGIN
from gateway.snapshot import Snapshot
from tests.gateway.lua.lua_helpers import REQUEST_ID, make_ctx

HOW_TO_SNIPPET = """local auth_header = kong.request.get_header("Authorization")
if auth_header and auth_header:find("^Bearer ") then
  local key = auth_header:sub(8)
  kong.service.request.set_header("apikey", key)
end
"""


def build(**config: Any) -> Handler:
    validated = PLUGIN.validate(config)
    entity = PluginEntity(name="pre-function", config=config)
    deps = BuildContext(Snapshot.create(1), InMemoryCredentials(), entity)
    return PLUGIN.build(validated, deps)


def errors(config: dict[str, Any]) -> list[tuple[tuple[int | str, ...], str]]:
    with pytest.raises(ValidationError) as info:
        PLUGIN.validate(config)
    return [(tuple(e["loc"]), e["msg"]) for e in info.value.errors()]


def test_plugin_identity() -> None:
    assert PLUGIN.name == "pre-function"
    assert PLUGIN.priority == 1000000
    assert PLUGIN.allows_consumer_scope is False


def test_config_defaults_and_schema() -> None:
    config = PLUGIN.validate({"access": [HOW_TO_SNIPPET]})
    assert config.model_dump() == {
        "certificate": [],
        "rewrite": [],
        "access": [HOW_TO_SNIPPET],
        "header_filter": [],
        "body_filter": [],
        "log": [],
    }
    schema = PLUGIN.config_model.model_json_schema()
    assert schema["properties"]["access"]["type"] == "array"
    assert schema["properties"]["access"]["items"] == {"type": "string"}


def test_syntax_error_message_is_kongs() -> None:
    assert errors({"access": ["kong.log('ok')", "print("]}) == [
        (
            ("access", 1),
            'error parsing pre-function: [string "print("]:1: unexpected symbol near <eof>',
        ),
    ]


def test_at_least_one_phase_is_required() -> None:
    expected = (
        "at least one of these fields must be non-empty: 'config.certificate', "
        "'config.rewrite', 'config.access', 'config.header_filter', 'config.body_filter', "
        "'config.log'"
    )
    assert errors({}) == [((), expected)]
    assert errors({"access": []}) == [((), expected)]


def test_unknown_fields_and_non_strings_are_rejected() -> None:
    assert errors({"functions": ["x = 1"]})[0][0] == ("functions",)
    assert errors({"access": [1]})[0][0] == ("access", 0)


async def test_how_to_snippet_copies_the_bearer_token_into_apikey() -> None:
    handler = build(access=[HOW_TO_SNIPPET])
    ctx = make_ctx(headers=[("Authorization", "Bearer my-consumer-key")])
    assert await handler.access(ctx) is None
    assert ctx.request.headers.get("apikey") == "my-consumer-key"
    assert ctx.request.headers.get("Authorization") == "Bearer my-consumer-key"

    no_bearer = make_ctx(headers=[("Authorization", "Basic dXNlcjpwYXNz")])
    assert await handler.access(no_bearer) is None
    assert "apikey" not in no_bearer.request.headers


async def test_exit_with_table_body() -> None:
    handler = build(access=['return kong.response.exit(401, { message = "Invalid key" })'])
    result = await handler.access(make_ctx())
    assert result == Exit(
        401, b'{"message":"Invalid key"}', (("Content-Type", "application/json; charset=utf-8"),)
    )


async def test_exit_with_string_body_stops_later_functions() -> None:
    handler = build(
        access=[
            'kong.service.request.set_header("X-First", "1")',
            'return kong.response.exit(503, "maintenance", { ["Retry-After"] = "60" })',
            'kong.service.request.set_header("X-Third", "3")',
        ]
    )
    ctx = make_ctx()
    assert await handler.access(ctx) == Exit(503, b"maintenance", (("Retry-After", "60"),))
    assert ctx.request.headers.get("X-First") == "1"
    assert "X-Third" not in ctx.request.headers


async def test_functions_of_a_phase_run_in_order() -> None:
    handler = build(
        access=[
            'kong.service.request.set_header("X-Trace", "a")',
            'kong.service.request.set_header("X-Trace", kong.request.get_header("X-Trace") .. "b")',
        ]
    )
    ctx = make_ctx()
    await handler.access(ctx)
    assert ctx.request.headers.get("X-Trace") == "ab"


async def test_chunk_returning_a_function_keeps_upvalues_across_requests() -> None:
    handler = build(
        access=[
            """
            local count = 0
            return function()
              count = count + 1
              kong.service.request.set_header("X-Count", count)
            end
            """
        ]
    )
    seen = []
    for _ in range(3):
        ctx = make_ctx()
        await handler.access(ctx)
        seen.append(ctx.request.headers.get("X-Count"))
    assert seen == ["1", "2", "3"]


async def test_plain_chunk_runs_fresh_every_request() -> None:
    handler = build(access=['local n = (n or 0) + 1 kong.service.request.set_header("X-N", n)'])
    values = []
    for _ in range(2):
        ctx = make_ctx()
        await handler.access(ctx)
        values.append(ctx.request.headers.get("X-N"))
    assert values == ["1", "1"]


async def test_chunk_that_exits_on_first_run_becomes_its_function_later() -> None:
    # Kong: if the first run exits before returning, later calls run the chunk itself again.
    handler = build(
        access=[
            'if kong.request.get_header("X-Block") then return kong.response.exit(403) end'
            ' return function() kong.service.request.set_header("X-Inner", "yes") end'
        ]
    )
    blocked = make_ctx(headers=[("X-Block", "1")])
    assert await handler.access(blocked) == Exit(403, b"", ())
    ctx = make_ctx()
    assert await handler.access(ctx) is None
    assert "X-Inner" not in ctx.request.headers


async def test_runtime_error_raises() -> None:
    handler = build(access=['error("kaboom")'])
    with pytest.raises(LuaRuntimeError, match="kaboom"):
        await handler.access(make_ctx())


async def test_endless_loop_raises_and_next_request_works() -> None:
    handler = build(
        access=[
            'if kong.request.get_header("X-Spin") then while true do end end'
            ' kong.service.request.set_header("X-Ok", "1")'
        ]
    )
    with pytest.raises(LuaLimitError):
        await handler.access(make_ctx(headers=[("X-Spin", "1")]))
    ctx = make_ctx()
    assert await handler.access(ctx) is None
    assert ctx.request.headers.get("X-Ok") == "1"


async def test_ngx_exit_with_status_gives_kongs_error_body() -> None:
    handler = build(access=["ngx.status = 400 ngx.exit(ngx.status)"])
    result = await handler.access(make_ctx())
    assert result is not None and result.status == 400
    assert json.loads(result.body) == {"message": "Bad request", "request_id": REQUEST_ID}


async def test_rewrite_header_filter_and_log_phases() -> None:
    handler = build(
        rewrite=['kong.service.request.set_header("X-Rewrite", "1")'],
        header_filter=['kong.response.set_header("X-Via-Lua", kong.ctx.shared.tag)'],
        log=['kong.log.set_serialize_value("lua.status", kong.response.get_status())'],
        access=['kong.ctx.shared.tag = "tagged"'],
    )
    ctx = make_ctx()
    assert await handler.rewrite(ctx) is None
    assert await handler.access(ctx) is None
    head = ResponseHead(200, Headers([("Content-Type", "application/json")]))
    ctx.response = head
    handler.header_filter(ctx, head)
    await handler.log(ctx)
    assert ctx.request.headers.get("X-Rewrite") == "1"
    assert head.headers.get("X-Via-Lua") == "tagged"
    assert ctx.log_fields == {"lua.status": 200}


def test_handler_overrides_only_phases_with_code() -> None:
    handler = build(access=[HOW_TO_SNIPPET])
    assert [
        p
        for p in ("rewrite", "access", "header_filter", "body_filter", "log")
        if handler.overrides(p)
    ] == ["access"]
    both = build(rewrite=["x = 1"], log=["y = 2"])
    assert [
        p for p in ("rewrite", "access", "header_filter", "body_filter", "log") if both.overrides(p)
    ] == ["rewrite", "log"]


async def test_builds_are_independent() -> None:
    # Per compiled config: upvalues are not shared between two builds of the same code.
    code = "local n = 0 return function() n = n + 1 kong.service.request.set_header('X-N', n) end"
    first, second = build(access=[code]), build(access=[code])
    for handler, expected in ((first, "1"), (first, "2"), (second, "1")):
        ctx = make_ctx()
        await handler.access(ctx)
        assert ctx.request.headers.get("X-N") == expected
