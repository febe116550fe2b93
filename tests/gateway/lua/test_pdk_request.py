"""kong.request.* as seen from Lua: Kong's semantics (reference/kong-plugins.md §2.6).

Each snippet reports what it read with `kong.response.exit(200, <table>)`, so the assertions are
on the JSON a client would get.
"""

from __future__ import annotations

import json

import pytest

from tests.gateway.lua.lua_helpers import make_ctx, run_lua


def reported(code: str, **ctx_args: object) -> object:
    """Run `return kong.response.exit(200, <code>)` and decode the JSON body."""
    result, _ = run_lua(f"return kong.response.exit(200, {code})", make_ctx(**ctx_args))  # type: ignore[arg-type]
    assert result is not None and result.status == 200
    return json.loads(result.body)


HEADERS = [
    ("Authorization", "Bearer abc"),
    ("X-Multi", "one"),
    ("x-multi", "two"),
    ("X-Under_Score", "u"),
    ("Content-Type", "application/json"),
]


def test_get_header_is_case_insensitive_with_dash_underscore_equivalence() -> None:
    body = reported(
        "{ a = kong.request.get_header('authorization'), b = kong.request.get_header('X_MULTI'),"
        " c = kong.request.get_header('x-under-score'), d = kong.request.get_header('missing') }",
        headers=HEADERS,
    )
    assert body == {"a": "Bearer abc", "b": "one", "c": "u"}


def test_get_header_requires_a_string() -> None:
    with pytest.raises(Exception, match="header name must be a string"):
        run_lua("kong.request.get_header({})")


def test_get_headers_lowercases_and_groups_repeats() -> None:
    body = reported(
        "(function() local h = kong.request.get_headers()"
        " return { all = h, multi = h.X_Multi, auth = h['Authorization'] } end)()",
        headers=HEADERS,
    )
    assert body == {
        "all": {
            "authorization": "Bearer abc",
            "x-multi": ["one", "two"],
            "x-under_score": "u",
            "content-type": "application/json",
        },
        "multi": ["one", "two"],
        "auth": "Bearer abc",
    }


def test_get_headers_limit_reports_truncation() -> None:
    body = reported(
        "(function() local h, err = kong.request.get_headers(2)"
        " local n = 0 for _ in pairs(h) do n = n + 1 end return { n = n, err = err } end)()",
        headers=HEADERS,
    )
    assert body == {"n": 2, "err": "truncated"}


def test_get_query_decodes_bare_keys_and_repeats() -> None:
    body = reported(
        "{ q = kong.request.get_query(), first = kong.request.get_query_arg('a'),"
        " flag = kong.request.get_query_arg('flag'), raw = kong.request.get_raw_query() }",
        query="a=1&flag&sp=x+y%21&a=2&empty=&=skipped",
    )
    assert body == {
        "q": {"a": ["1", "2"], "flag": True, "sp": "x y!", "empty": ""},
        "first": "1",
        "flag": True,
        "raw": "a=1&flag&sp=x+y%21&a=2&empty=&=skipped",
    }


def test_request_line_accessors() -> None:
    body = reported(
        "{ method = kong.request.get_method(), path = kong.request.get_path(),"
        " raw_path = kong.request.get_raw_path(), pwq = kong.request.get_path_with_query(),"
        " scheme = kong.request.get_scheme(), host = kong.request.get_host(),"
        " port = kong.request.get_port(), version = kong.request.get_http_version(),"
        " start = kong.request.get_start_time(), id = kong.request.get_id(),"
        " ip = kong.client.get_ip() }",
        method="post",
        path="/v1/models",
        query="x=1",
    )
    assert body == {
        "method": "POST",
        "path": "/v1/models",
        "raw_path": "/v1/models",
        "pwq": "/v1/models?x=1",
        "scheme": "http",
        "host": "api.example.com",
        "port": 8000,
        "version": 1.1,
        "start": 1_700_000_000_250,
        "id": "5f1c2a4e0b9d7e3a",
        "ip": "203.0.113.7",
    }


def test_get_body_json_and_form() -> None:
    json_body = reported(
        "(function() local b, err, mime = kong.request.get_body()"
        " return { model = b.model, n = #b.messages, mime = mime } end)()",
        headers=[("Content-Type", "application/json; charset=utf-8")],
        body=b'{"model":"gpt-4o","messages":[{"role":"user"},{"role":"user"}]}',
    )
    assert json_body == {"model": "gpt-4o", "n": 2, "mime": "application/json"}
    form_body = reported(
        "kong.request.get_body()",
        headers=[("Content-Type", "application/x-www-form-urlencoded")],
        body=b"a=1&b=x+y&a=2",
    )
    assert form_body == {"a": ["1", "2"], "b": "x y"}


@pytest.mark.parametrize(
    ("headers", "body", "error"),
    [
        ([], b"{}", "missing content type"),
        ([("Content-Type", "application/json")], b"not json", "invalid json body"),
        ([("Content-Type", "application/json")], b'"a string"', "invalid json body"),
        ([("Content-Type", "text/plain")], b"hi", "unsupported content type 'text/plain'"),
    ],
)
def test_get_body_errors(headers: list[tuple[str, str]], body: bytes, error: str) -> None:
    result = reported(
        "(function() local b, err = kong.request.get_body() return { b = b, err = err } end)()",
        headers=headers,
        body=body,
    )
    assert result == {"err": error}


def test_get_raw_body_is_bytes_exact() -> None:
    ctx = make_ctx(body=b"\xff\x00binary")
    result, _ = run_lua(
        "local b = kong.request.get_raw_body()"
        " return kong.response.exit(200, #b .. ':' .. b:sub(1, 1):byte())",
        ctx,
    )
    assert result is not None and result.body == b"8:255"
