"""key-auth's key extraction against Kong's rule (reference/kong-plugins.md §1.3), for random
placements of keys in headers, the query string and the body.

The rule, per key name in order: the first enabled location holding the name decides (header,
then query, then body); a string wins even when empty, a repeated name is "Duplicate API key
found", a non-string (`?apikey`, a JSON number) moves on to the next name. Header names match
case-insensitively with `_` and `-` alike; query and form names match exactly after decoding.
With `hide_credentials`, every copy of the winning name is removed from the headers, the query
and (when bodies are searched) the body; nothing else changes.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, quote_plus

from hypothesis import given
from hypothesis import strategies as st

from gateway.context import ConsumerInfo, CredentialInfo, Exit, RequestContext
from gateway.credentials import CredentialMatch, InMemoryCredentials
from gateway.entities import Plugin as PluginEntity
from gateway.plugins.base import BuildContext
from gateway.plugins.key_auth import PLUGIN
from gateway.snapshot import Snapshot
from tests.gateway.plugins.test_key_auth import make_ctx
from tests.property.bounded import bounded

KEY = "k +/ü&=1"
"""The one valid key: a space, `+`, `/`, `&` and `=` must survive each location's encoding."""
ALICE = ConsumerInfo("5a1ce000-0000-4000-8000-000000000001", "alice")
CONSUMER_HEADERS = {
    "x-consumer-id",
    "x-consumer-custom-id",
    "x-consumer-username",
    "x-credential-identifier",
    "x-anonymous-consumer",
}
BOUNDARY = "XyZzy"

KEY_NAMES = ("apikey", "api_key", "X-Key")
# Header spellings that are each name (case, `_`/`-`), and near misses that are not.
HEADER_SPELLINGS = {
    "apikey": ("apikey", "APIKEY", "ApiKey"),
    "api_key": ("api_key", "API-KEY", "Api-Key", "api-key"),
    "X-Key": ("x-key", "X_KEY", "X-Key"),
}
HEADER_DECOYS = ("Accept", "X-Other", "apikeys", "x-api-key")
# Query/form names: exact names (plain or %-encoded) and near misses (case differs: no match).
ARG_NAMES = ("apikey", "api_key", "X-Key", "api%5Fkey", "APIKEY", "X-KEY", "apikeyx", "other")
VALUES = (KEY, "wrong", "")
JSON_VALUES: tuple[Any, ...] = (KEY, "wrong", "", 1, True, None, [KEY], {"k": KEY})


class _Dup:
    pass


DUP = _Dup()
NOT_A_STRING = object()


def _norm(name: str) -> str:
    return name.lower().replace("_", "-")


@dataclass(frozen=True)
class _Case:
    key_names: tuple[str, ...]
    in_header: bool
    in_query: bool
    in_body: bool
    hide: bool
    headers: tuple[tuple[str, str], ...]
    args: tuple[tuple[str, str | None], ...]  # (raw name, value or None for a bare name)
    body_kind: str  # none | json | form | multipart | text
    json_body: dict[str, Any]
    form_args: tuple[tuple[str, str | None], ...]
    parts: tuple[tuple[str, str], ...]

    def query(self) -> str:
        return _encode_args(self.args)

    def content_type(self) -> str | None:
        return {
            "json": "application/json; charset=utf-8",
            "form": "application/x-www-form-urlencoded",
            "multipart": f'multipart/form-data; boundary="{BOUNDARY}"',
            "text": "text/plain",
        }.get(self.body_kind)

    def body(self) -> bytes:
        if self.body_kind in ("json", "text"):
            return json.dumps(self.json_body).encode()
        if self.body_kind == "form":
            return _encode_args(self.form_args).encode()
        if self.body_kind == "multipart":
            out = "".join(
                f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
                for name, value in self.parts
            )
            return (out + f"--{BOUNDARY}--\r\n").encode()
        return b""


def _encode_args(args: tuple[tuple[str, str | None], ...]) -> str:
    # names are written as given (`api%5Fkey` stays encoded); values are form-encoded
    return "&".join(
        name if value is None else f"{name}={quote_plus(value)}" for name, value in args
    )


def _decoded(name: str) -> str:
    return name.replace("%5F", "_")


def _one(values: list[Any]) -> Any:
    if not values:
        return None
    return values[0] if len(values) == 1 else DUP


def _body_value(case: _Case, name: str) -> Any:
    if case.body_kind == "json":
        if name not in case.json_body:
            return None
        value = case.json_body[name]
        if isinstance(value, str):
            return value
        return DUP if isinstance(value, list | dict) else NOT_A_STRING
    if case.body_kind == "form":
        found = [NOT_A_STRING if v is None else v for n, v in case.form_args if _decoded(n) == name]
        return _one(found)
    if case.body_kind == "multipart":
        return _one([v for n, v in case.parts if n == name])
    return None  # no body, or a type Kong's get_body does not parse


def expected(case: _Case) -> tuple[str, str | None, str | None]:
    """(outcome, key, winning name): outcome is key | duplicate | none."""
    for name in case.key_names:
        value: Any = None
        if case.in_header:
            value = _one([v for n, v in case.headers if _norm(n) == _norm(name)])
        if value is None and case.in_query:
            found = [NOT_A_STRING if v is None else v for n, v in case.args if _decoded(n) == name]
            value = _one(found)
        if value is None and case.in_body:
            value = _body_value(case, name)
        if isinstance(value, str):
            return ("key", value, name)
        if value is DUP:
            return ("duplicate", None, None)
    return ("none", None, None)


def _pairs(names: tuple[str, ...], values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    # empty half of the time, so that later locations and key names get their turn
    pairs = st.lists(st.tuples(st.sampled_from(names), values), min_size=1, max_size=4)
    return st.just(()) | pairs.map(tuple)


@st.composite
def _cases(draw: st.DrawFn) -> _Case:
    key_names = tuple(
        draw(st.lists(st.sampled_from(KEY_NAMES), min_size=1, max_size=2, unique=True))
    )
    # the configured names (in their spellings) twice as often as the decoys
    spellings = tuple(s for n in key_names for s in HEADER_SPELLINGS[n]) * 2 + HEADER_DECOYS
    arg_names = key_names * 2 + (("api%5Fkey",) if "api_key" in key_names else ()) + ARG_NAMES
    values = st.sampled_from((KEY, *VALUES))
    arg_value = st.none() | values
    return _Case(
        key_names=key_names,
        in_header=draw(st.booleans()),
        in_query=draw(st.booleans()),
        in_body=draw(st.sampled_from([True, True, False])),
        hide=draw(st.booleans()),
        headers=draw(_pairs(spellings, values)),
        args=draw(_pairs(arg_names, arg_value)),
        body_kind=draw(st.sampled_from(["json", "form", "multipart", "none", "text"])),
        json_body=draw(
            st.dictionaries(
                st.sampled_from(arg_names),
                st.sampled_from((KEY, *JSON_VALUES)),
                max_size=3,
            )
        ),
        form_args=draw(_pairs(arg_names, arg_value)),
        parts=draw(_pairs(key_names * 2 + ("other", "APIKEY"), values)),
    )


def _run(case: _Case) -> tuple[Exit | None, RequestContext]:
    config = {
        "key_names": list(case.key_names),
        "key_in_header": case.in_header,
        "key_in_query": case.in_query,
        "key_in_body": case.in_body,
        "hide_credentials": case.hide,
    }
    store = InMemoryCredentials()
    store.add(KEY, CredentialMatch(CredentialInfo("cred-1", ALICE.id), ALICE))
    deps = BuildContext(Snapshot.create(1), store, PluginEntity(name="key-auth", config=config))
    handler = PLUGIN.build(PLUGIN.validate(config), deps)
    headers = list(case.headers)
    content_type = case.content_type()
    if content_type is not None:
        headers.append(("Content-Type", content_type))
    ctx = make_ctx(headers, case.query(), case.body(), method="POST")
    return asyncio.run(handler.access(ctx)), ctx


@bounded(250)
@given(case=_cases())
def test_the_key_found_is_kongs_and_hiding_removes_every_copy(case: _Case) -> None:
    outcome, key, name = expected(case)
    original_headers = list(case.headers)
    exit_, ctx = _run(case)

    if outcome == "key" and key == KEY:
        assert exit_ is None, (case, exit_)
        assert ctx.consumer == ALICE
    else:
        assert exit_ is not None and exit_.status == 401, (case, exit_)
        message = json.loads(exit_.body)["message"]
        if outcome == "duplicate":
            assert message == "Duplicate API key found", case
        elif outcome == "none" or key == "":
            assert message == "No API key found in request", case
        else:
            assert message == "Unauthorized", case
        assert ctx.consumer is None
        return

    assert name is not None
    sent = [
        (n, v)
        for n, v in ctx.request.headers.items()
        if n.lower() not in CONSUMER_HEADERS and n.lower() != "content-type"
    ]
    sent_args = [n for n in ctx.upstream.query.split("&") if n]
    if not case.hide:
        assert sent == original_headers
        assert ctx.upstream.query == case.query()
        assert ctx.upstream.body is None
        return
    # every copy of the winning name is gone, and nothing else
    assert sent == [(n, v) for n, v in original_headers if _norm(n) != _norm(name)], case
    kept = [_encode_args(((n, v),)) for n, v in case.args if _decoded(n) != name]
    assert sent_args == kept, case
    body_holds_name = case.in_body and _body_value(case, name) is not None
    if not body_holds_name:
        assert ctx.upstream.body is None, case
    elif case.body_kind == "json":
        assert ctx.upstream.body is not None
        assert json.loads(ctx.upstream.body) == {
            k: v for k, v in case.json_body.items() if k != name
        }
    elif case.body_kind == "form":
        assert ctx.upstream.body is not None
        assert ctx.upstream.body.decode() == _encode_args(
            tuple((n, v) for n, v in case.form_args if _decoded(n) != name)
        )
        assert all(n != name for n, _ in parse_qsl(ctx.upstream.body.decode()))
    else:
        assert ctx.upstream.body is not None
        rest = _Case(**{**case.__dict__, "parts": tuple(p for p in case.parts if p[0] != name)})
        assert ctx.upstream.body == rest.body(), case
