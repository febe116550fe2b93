"""key-auth as Kong users see it: status, exact bodies and headers, and what reaches upstream."""

from __future__ import annotations

import time
from typing import Any

import pytest
from pydantic import ValidationError

from gateway.context import ConsumerInfo, CredentialInfo, Exit, Request, RequestContext, Upstream
from gateway.credentials import (
    CredentialLookupError,
    CredentialMatch,
    InMemoryCredentials,
    hash_key,
)
from gateway.entities import Consumer
from gateway.entities import Plugin as PluginEntity
from gateway.headers import Headers
from gateway.plugins.base import BuildContext, Handler
from gateway.plugins.key_auth import PLUGIN, KeyAuthConfig
from gateway.snapshot import Snapshot

KEY = "my-consumer-key"
ALICE = ConsumerInfo("5a1ce000-0000-4000-8000-000000000001", "alice", "alice-custom")
ALICE_CRED = CredentialInfo("c0ffee00-0000-4000-8000-000000000001", ALICE.id)
ANON = Consumer(id="a0000000-0000-4000-8000-0000000000aa", username="anonymous-user")
JSON_CT = ("Content-Type", "application/json; charset=utf-8")


def error_body(message: str) -> bytes:
    return ('{\n  "message":"' + message + '",\n  "request_id":"req-123"\n}').encode()


def unauthorized(message: str, www: str = "Key") -> Exit:
    return Exit(401, error_body(message), (JSON_CT, ("WWW-Authenticate", www)))


def make_ctx(
    headers: list[tuple[str, str]] | None = None,
    query: str = "",
    body: bytes = b"",
    method: str = "GET",
) -> RequestContext:
    request = Request(
        method=method,
        scheme="http",
        host="proxy.test",
        port=8000,
        raw_path="/v1/chat",
        path="/v1/chat",
        raw_query=query,
        headers=Headers(headers or []),
        body=body,
        client_ip="127.0.0.1",
    )
    return RequestContext(request, Upstream(query=query, method=method), request_id="req-123")


def credentials(match: CredentialMatch | None = None) -> InMemoryCredentials:
    store = InMemoryCredentials()
    store.add(KEY, match or CredentialMatch(ALICE_CRED, ALICE))
    return store


def build(
    config: dict[str, Any] | None = None,
    lookup: Any = None,
    consumers: tuple[Consumer, ...] = (ANON,),
) -> Handler:
    raw = config or {}
    snapshot = Snapshot.create(1, consumers=consumers)
    deps = BuildContext(
        snapshot,
        lookup if lookup is not None else credentials(),
        PluginEntity(name="key-auth", config=raw),
    )
    return PLUGIN.build(PLUGIN.validate(raw), deps)


def sent_headers(ctx: RequestContext) -> list[tuple[str, str]]:
    return ctx.request.headers.items()


# --- schema


def test_plugin_identity_and_defaults() -> None:
    assert (PLUGIN.name, PLUGIN.priority, PLUGIN.allows_consumer_scope) == ("key-auth", 1250, False)
    assert PLUGIN.validate({}).model_dump() == {
        "key_names": ["apikey"],
        "hide_credentials": True,
        "anonymous": None,
        "key_in_header": True,
        "key_in_query": True,
        "key_in_body": False,
        "run_on_preflight": True,
        "realm": None,
    }


def test_bad_key_name_has_kongs_message() -> None:
    with pytest.raises(ValidationError) as info:
        PLUGIN.validate({"key_names": ["apikey", "api key"]})
    assert [e["msg"] for e in info.value.errors()] == [
        "bad header name 'api key', allowed characters are A-Z, a-z, 0-9, '_', and '-'"
    ]


def test_unknown_config_field_is_refused() -> None:
    with pytest.raises(ValidationError):
        KeyAuthConfig.model_validate({"key_name": ["apikey"]})


# --- success and upstream headers


async def test_valid_header_key_sets_consumer_and_upstream_headers() -> None:
    ctx = make_ctx([("Host", "proxy.test"), ("apikey", KEY)])
    assert await build().access(ctx) is None
    assert ctx.consumer == ALICE
    assert ctx.credential == ALICE_CRED
    assert sent_headers(ctx) == [
        ("Host", "proxy.test"),
        ("X-Consumer-ID", ALICE.id),
        ("X-Consumer-Custom-ID", "alice-custom"),
        ("X-Consumer-Username", "alice"),
        ("X-Credential-Identifier", ALICE_CRED.id),
    ]


async def test_spoofed_consumer_headers_are_replaced_or_cleared() -> None:
    bare = ConsumerInfo("b0000000-0000-4000-8000-000000000002")  # no username, no custom_id
    store = InMemoryCredentials()
    store.add(KEY, CredentialMatch(CredentialInfo("cred-2", bare.id), bare))
    ctx = make_ctx(
        [
            ("apikey", KEY),
            ("X-Consumer-ID", "admin"),
            ("x-consumer-custom-id", "spoof"),
            ("X_Consumer_Username", "root"),
            ("X-Credential-Identifier", "fake"),
            ("X-Anonymous-Consumer", "false"),
        ]
    )
    assert await build(lookup=store).access(ctx) is None
    assert sent_headers(ctx) == [
        ("X-Consumer-ID", bare.id),
        ("X-Credential-Identifier", "cred-2"),
    ]


async def test_header_name_is_case_insensitive() -> None:
    ctx = make_ctx([("ApiKey", KEY)])
    assert await build().access(ctx) is None
    assert ctx.consumer == ALICE


async def test_underscore_in_key_name_matches_dash_header() -> None:
    ctx = make_ctx([("Api-Key", KEY)])
    assert await build({"key_names": ["api_key"]}).access(ctx) is None
    assert ctx.consumer == ALICE
    assert "api-key" not in ctx.request.headers


async def test_hide_credentials_false_forwards_the_key() -> None:
    ctx = make_ctx([("apikey", KEY)], query="apikey=other&x=1")
    assert await build({"hide_credentials": False}).access(ctx) is None
    assert ctx.request.headers.get("apikey") == KEY
    assert ctx.upstream.query == "apikey=other&x=1"


async def test_hide_credentials_removes_header_every_spelling() -> None:
    ctx = make_ctx([("API-KEY", KEY), ("accept", "*/*")])
    assert await build({"key_names": ["api_key"]}).access(ctx) is None
    assert sent_headers(ctx)[0] == ("accept", "*/*")
    assert not any(name.lower() in ("api-key", "api_key") for name, _ in sent_headers(ctx))


async def test_hide_credentials_removes_query_arg_keeping_others_in_order() -> None:
    ctx = make_ctx(query=f"b=2&apikey={KEY}&a=1&c")
    assert await build().access(ctx) is None
    assert ctx.consumer == ALICE
    assert ctx.upstream.query == "b=2&a=1&c"


async def test_hide_credentials_clears_the_query_arg_even_when_the_header_held_the_key() -> None:
    ctx = make_ctx([("apikey", KEY)], query="apikey=decoy&x=1")
    assert await build().access(ctx) is None
    assert ctx.upstream.query == "x=1"


async def test_hide_credentials_removes_json_body_field() -> None:
    ctx = make_ctx(
        [("Content-Type", "application/json")],
        body=b'{"model":"gpt-4o","apikey":"' + KEY.encode() + b'","n":1}',
    )
    assert await build({"key_in_body": True}).access(ctx) is None
    assert ctx.consumer == ALICE
    assert ctx.upstream.body == b'{"model":"gpt-4o","n":1}'


async def test_hide_credentials_removes_form_body_field() -> None:
    ctx = make_ctx(
        [("Content-Type", "application/x-www-form-urlencoded")],
        body=b"a=1&apikey=" + KEY.encode() + b"&b=%20x",
    )
    assert await build({"key_in_body": True}).access(ctx) is None
    assert ctx.consumer == ALICE
    assert ctx.upstream.body == b"a=1&b=%20x"


async def test_hide_credentials_removes_multipart_part() -> None:
    part_a = b'--XyZ\r\nContent-Disposition: form-data; name="a"\r\n\r\none\r\n'
    part_key = b'--XyZ\r\nContent-Disposition: form-data; name="apikey"\r\n\r\n' + KEY.encode()
    body = part_a + part_key + b"\r\n--XyZ--\r\n"
    ctx = make_ctx([("Content-Type", "multipart/form-data; boundary=XyZ")], body=body)
    assert await build({"key_in_body": True}).access(ctx) is None
    assert ctx.consumer == ALICE
    assert ctx.upstream.body == part_a + b"--XyZ--\r\n"


async def test_body_field_of_the_key_name_is_removed_when_the_header_held_the_key() -> None:
    ctx = make_ctx(
        [("apikey", KEY), ("Content-Type", "application/json")],
        body=b'{"apikey":"decoy","q":true}',
    )
    assert await build({"key_in_body": True}).access(ctx) is None
    assert ctx.upstream.body == b'{"q":true}'


async def test_body_without_the_key_name_is_forwarded_untouched() -> None:
    ctx = make_ctx([("apikey", KEY), ("Content-Type", "application/json")], body=b'{"q": 1}')
    assert await build({"key_in_body": True}).access(ctx) is None
    assert ctx.upstream.body is None


# --- locations and precedence


async def test_wrong_header_is_not_rescued_by_right_query_or_body() -> None:
    ctx = make_ctx(
        [("apikey", "wrong"), ("Content-Type", "application/json")],
        query=f"apikey={KEY}",
        body=b'{"apikey":"' + KEY.encode() + b'"}',
    )
    assert await build({"key_in_body": True}).access(ctx) == unauthorized("Unauthorized")
    assert ctx.consumer is None


async def test_wrong_query_is_not_rescued_by_right_body() -> None:
    ctx = make_ctx(
        [("Content-Type", "application/x-www-form-urlencoded")],
        query="apikey=wrong",
        body=b"apikey=" + KEY.encode(),
    )
    assert await build({"key_in_body": True}).access(ctx) == unauthorized("Unauthorized")


async def test_empty_header_wins_and_is_no_key() -> None:
    ctx = make_ctx([("apikey", "")], query=f"apikey={KEY}")
    assert await build().access(ctx) == unauthorized("No API key found in request")


@pytest.mark.parametrize("query", ["apikey=", "apikey"])
async def test_empty_or_bare_query_arg_is_no_key(query: str) -> None:
    ctx = make_ctx(query=query)
    assert await build().access(ctx) == unauthorized("No API key found in request")


async def test_bare_query_arg_stops_the_search_for_that_name() -> None:
    # `?apikey` is Lua `true`: the body is not searched for "apikey", the next name is
    ctx = make_ctx(
        [("Content-Type", "application/json")],
        query="apikey",
        body=b'{"apikey":"' + KEY.encode() + b'","token":"' + KEY.encode() + b'"}',
    )
    handler = build({"key_in_body": True, "key_names": ["apikey", "token"]})
    assert await handler.access(ctx) is None
    assert ctx.upstream.body == b'{"apikey":"' + KEY.encode() + b'"}'


async def test_key_names_are_tried_in_order() -> None:
    ctx = make_ctx([("x-token", KEY), ("apikey", "wrong")])
    handler = build({"key_names": ["x-token", "apikey"]})
    assert await handler.access(ctx) is None
    assert ctx.consumer == ALICE
    # only the name the key came from is hidden
    assert ctx.request.headers.get("apikey") == "wrong"


async def test_disabled_header_location_is_ignored() -> None:
    ctx = make_ctx([("apikey", "wrong")], query=f"apikey={KEY}")
    assert await build({"key_in_header": False}).access(ctx) is None
    assert ctx.consumer == ALICE


async def test_disabled_query_location_is_ignored() -> None:
    ctx = make_ctx(query=f"apikey={KEY}")
    handler = build({"key_in_query": False})
    assert await handler.access(ctx) == unauthorized("No API key found in request")


async def test_body_is_not_searched_by_default() -> None:
    ctx = make_ctx(
        [("Content-Type", "application/json")], body=b'{"apikey":"' + KEY.encode() + b'"}'
    )
    assert await build().access(ctx) == unauthorized("No API key found in request")


async def test_body_key_in_a_body_rewritten_by_an_earlier_plugin() -> None:
    ctx = make_ctx([("Content-Type", "application/json")], body=b"{}")
    ctx.upstream.body = b'{"apikey":"' + KEY.encode() + b'"}'
    assert await build({"key_in_body": True}).access(ctx) is None
    assert ctx.consumer == ALICE
    assert ctx.upstream.body == b"{}"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"apikey": 12345}'),
        ("application/json", b'{"apikey": null}'),
        ("application/json", b"[1, 2]"),
        ("application/json", b"not json"),
        ("text/plain", b"apikey=" + KEY.encode()),
    ],
)
async def test_body_without_a_string_key_is_no_key(content_type: str, body: bytes) -> None:
    ctx = make_ctx([("Content-Type", content_type)], body=body)
    handler = build({"key_in_body": True})
    assert await handler.access(ctx) == unauthorized("No API key found in request")
    assert ctx.upstream.body is None


# --- duplicates


@pytest.mark.parametrize(
    ("headers", "query", "body"),
    [
        ([("apikey", KEY), ("APIKEY", KEY)], "", b""),
        ([], f"apikey={KEY}&apikey={KEY}", b""),
        ([], f"apikey={KEY}&apikey", b""),
        ([("Content-Type", "application/x-www-form-urlencoded")], "", b"apikey=a&apikey=b"),
        ([("Content-Type", "application/json")], "", b'{"apikey":["a"]}'),
        ([("Content-Type", "application/json")], "", b'{"apikey":{"k":"a"}}'),
        (
            [("Content-Type", 'multipart/form-data; boundary="b1"')],
            "",
            b'--b1\r\nContent-Disposition: form-data; name="apikey"\r\n\r\na\r\n'
            b'--b1\r\nContent-Disposition: form-data; name="apikey"\r\n\r\nb\r\n--b1--\r\n',
        ),
    ],
)
async def test_repeated_key_is_a_duplicate(
    headers: list[tuple[str, str]], query: str, body: bytes
) -> None:
    ctx = make_ctx(headers, query=query, body=body)
    handler = build({"key_in_body": True})
    assert await handler.access(ctx) == unauthorized("Duplicate API key found")


# --- errors


async def test_no_key_gives_kongs_exact_401() -> None:
    result = await build().access(make_ctx())
    assert result == Exit(
        401,
        b'{\n  "message":"No API key found in request",\n  "request_id":"req-123"\n}',
        (("Content-Type", "application/json; charset=utf-8"), ("WWW-Authenticate", "Key")),
    )


async def test_errors_follow_the_accept_header() -> None:
    result = await build().access(make_ctx([("apikey", "nope"), ("Accept", "text/plain")]))
    assert result == Exit(
        401,
        b"Unauthorized\nrequest_id: req-123\n",
        (("Content-Type", "text/plain; charset=utf-8"), ("WWW-Authenticate", "Key")),
    )


async def test_realm_goes_into_www_authenticate() -> None:
    result = await build({"realm": "lockgate"}).access(make_ctx([("apikey", "nope")]))
    assert result == unauthorized("Unauthorized", 'Key realm="lockgate"')


async def test_unknown_key_is_unauthorized() -> None:
    ctx = make_ctx([("apikey", "not-a-key")])
    assert await build().access(ctx) == unauthorized("Unauthorized")
    assert (ctx.consumer, ctx.credential) == (None, None)
    assert "X-Consumer-ID" not in ctx.request.headers


async def test_key_that_is_not_utf8_is_unauthorized() -> None:
    ctx = make_ctx(query="apikey=%FF%FE")
    assert await build().access(ctx) == unauthorized("Unauthorized")


async def test_expired_credential_is_unauthorized() -> None:
    store = credentials(CredentialMatch(ALICE_CRED, ALICE, expires_at=time.time() - 1))
    assert await build(lookup=store).access(make_ctx([("apikey", KEY)])) == unauthorized(
        "Unauthorized"
    )


class StaleLookup:
    """A lookup that hands back a match even though it has expired (a stale cache)."""

    async def lookup(self, key_hash: str) -> CredentialMatch | None:
        assert key_hash == hash_key(KEY)
        return CredentialMatch(ALICE_CRED, ALICE, expires_at=time.time() - 1)


async def test_expired_match_from_the_lookup_is_refused_by_the_plugin() -> None:
    ctx = make_ctx([("apikey", KEY)])
    assert await build(lookup=StaleLookup()).access(ctx) == unauthorized("Unauthorized")
    assert ctx.consumer is None


class DownLookup:
    async def lookup(self, key_hash: str) -> CredentialMatch | None:
        raise CredentialLookupError("redis and control plane unreachable")


UNAVAILABLE = Exit(503, error_body("Unable to verify the API key right now; try again"), (JSON_CT,))


async def test_lookup_error_is_503_not_401() -> None:
    ctx = make_ctx([("apikey", KEY)])
    assert await build(lookup=DownLookup()).access(ctx) == UNAVAILABLE


async def test_lookup_error_is_503_even_with_anonymous() -> None:
    ctx = make_ctx([("apikey", KEY)])
    handler = build({"anonymous": ANON.id}, lookup=DownLookup())
    assert await handler.access(ctx) == UNAVAILABLE
    assert ctx.consumer is None


# --- anonymous


def anonymous_headers(ctx: RequestContext) -> list[tuple[str, str]]:
    return [
        (k, v)
        for k, v in sent_headers(ctx)
        if k.lower().startswith(("x-consumer", "x-cred", "x-anon"))
    ]


@pytest.mark.parametrize("ref", [ANON.id, "anonymous-user"])
async def test_anonymous_by_id_or_username_on_missing_key(ref: str) -> None:
    ctx = make_ctx([("X-Credential-Identifier", "spoof")])
    assert await build({"anonymous": ref}).access(ctx) is None
    assert ctx.consumer == ConsumerInfo(ANON.id, "anonymous-user", None)
    assert ctx.credential is None
    assert anonymous_headers(ctx) == [
        ("X-Consumer-ID", ANON.id),
        ("X-Consumer-Username", "anonymous-user"),
        ("X-Anonymous-Consumer", "true"),
    ]


async def test_anonymous_on_invalid_key_still_hides_it() -> None:
    ctx = make_ctx([("apikey", "wrong")])
    assert await build({"anonymous": ANON.id}).access(ctx) is None
    assert ctx.consumer is not None and ctx.consumer.id == ANON.id
    assert "apikey" not in ctx.request.headers


async def test_anonymous_configured_but_valid_key_authenticates_the_key() -> None:
    ctx = make_ctx([("apikey", KEY), ("X-Anonymous-Consumer", "true")])
    assert await build({"anonymous": ANON.id}).access(ctx) is None
    assert (ctx.consumer, ctx.credential) == (ALICE, ALICE_CRED)
    assert "X-Anonymous-Consumer" not in ctx.request.headers


async def test_anonymous_that_does_not_exist_is_500() -> None:
    handler = build({"anonymous": "ghost"}, consumers=())
    assert await handler.access(make_ctx()) == Exit(
        500, error_body("anonymous consumer ghost is configured but doesn't exist"), (JSON_CT,)
    )


async def test_anonymous_skips_when_a_higher_priority_auth_already_authenticated() -> None:
    ctx = make_ctx([("apikey", "wrong")])
    other = CredentialInfo("jwt-cred", "someone")
    ctx.credential = other
    assert await build({"anonymous": ANON.id}).access(ctx) is None
    assert ctx.credential is other
    assert sent_headers(ctx) == [("apikey", "wrong")]


async def test_without_anonymous_an_earlier_auth_does_not_exempt_the_request() -> None:
    ctx = make_ctx()
    ctx.credential = CredentialInfo("jwt-cred", "someone")
    assert await build().access(ctx) == unauthorized("No API key found in request")


# --- preflight


async def test_preflight_passes_through_when_run_on_preflight_is_false() -> None:
    ctx = make_ctx([("Access-Control-Request-Method", "POST")], method="OPTIONS")
    assert await build({"run_on_preflight": False}).access(ctx) is None
    assert ctx.consumer is None
    assert sent_headers(ctx) == [("Access-Control-Request-Method", "POST")]


async def test_preflight_is_authenticated_by_default() -> None:
    ctx = make_ctx(method="OPTIONS")
    assert await build().access(ctx) == unauthorized("No API key found in request")


# --- the how-to: OpenAI SDK with a pre-function copying the bearer token


async def test_how_to_apikey_copied_from_bearer_by_earlier_plugin() -> None:
    ctx = make_ctx([("Authorization", f"Bearer {KEY}"), ("Content-Type", "application/json")])
    ctx.request.headers.set("apikey", KEY)  # what the global pre-function did
    assert await build().access(ctx) is None
    assert (ctx.consumer, ctx.credential) == (ALICE, ALICE_CRED)
    assert "apikey" not in ctx.request.headers
    # key-auth leaves Authorization alone: ai-proxy-advanced replaces it with the provider key
    assert ctx.request.headers.get("Authorization") == f"Bearer {KEY}"


async def test_how_to_wrong_bearer_is_401() -> None:
    ctx = make_ctx([("Authorization", "Bearer wrong")])
    ctx.request.headers.set("apikey", "wrong")
    assert await build().access(ctx) == unauthorized("Unauthorized")
