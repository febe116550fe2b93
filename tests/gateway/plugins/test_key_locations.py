"""How key-auth reads and strips a key in each location, byte for byte."""

from __future__ import annotations

import pytest

from gateway.headers import Headers
from gateway.plugins.key_locations import (
    DUPLICATE,
    NOT_A_STRING,
    KeyValue,
    arg_value,
    header_value,
    parse_body,
    remove_headers,
    without_arg,
)


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", None),
        ("a=1", None),
        ("apikey=k", "k"),
        ("apikey=a+b%21", "a b!"),
        ("api%6Bey=k", "k"),
        ("apikey", NOT_A_STRING),
        ("apikey=", ""),
        ("apikey=k&apikey=k", DUPLICATE),
        ("xapikey=k&apikeyx=k", None),
        ("=k&&apikey=k&", "k"),
        ("apikey=a=b", "a=b"),
    ],
)
def test_arg_value_decodes_like_nginx(query: str, expected: KeyValue) -> None:
    assert arg_value(query, "apikey") == expected


def test_without_arg_drops_every_encoding_of_the_name_and_keeps_the_rest_verbatim() -> None:
    assert without_arg("a=%2F&apikey=1&API=2&api%6Bey=3&apikey&z", "apikey") == "a=%2F&API=2&z"
    assert without_arg("a=1&b=2", "apikey") == "a=1&b=2"


def test_header_value_and_removal_treat_underscore_as_dash() -> None:
    headers = Headers([("X_Api-Key", "one"), ("other", "x")])
    assert header_value(headers, "x-api-key") == "one"
    headers.add("x-api_key", "two")
    assert header_value(headers, "x-api-key") is DUPLICATE
    remove_headers(headers, frozenset({"x-api-key"}))
    assert headers.items() == [("other", "x")]


def test_header_value_and_removal_with_dash_only_names() -> None:
    headers = Headers([("Host", "h"), ("APIKEY", "one"), ("Accept", "a")])
    assert header_value(headers, "apikey") == "one"
    assert header_value(headers, "x-api-key") is None
    headers.add("ApiKey", "two")
    assert header_value(headers, "apikey") is DUPLICATE
    remove_headers(headers, frozenset({"apikey", "absent"}))
    assert headers.items() == [("Host", "h"), ("Accept", "a")]
    remove_headers(headers, frozenset({"absent"}))
    assert headers.items() == [("Host", "h"), ("Accept", "a")]


def test_unsupported_or_missing_content_type_is_kongs_empty_body() -> None:
    assert parse_body(None, b"apikey=k") is None
    assert parse_body("text/plain", b"apikey=k") is None
    assert parse_body("multipart/form-data", b"--x\r\n") is None  # no boundary
    assert parse_body("application/json", b'"apikey"') is None  # not an object or array


def test_content_type_is_matched_by_substring_ignoring_case() -> None:
    body = parse_body("Application/JSON; charset=utf-8", b'{"apikey":"k"}')
    assert body is not None and body.value("apikey") == "k"


def test_json_values_map_to_kong_types() -> None:
    body = parse_body("application/json", b'{"s":"v","n":1,"f":false,"z":null,"a":[],"o":{}}')
    assert body is not None
    assert [body.value(n) for n in ("s", "n", "f", "z", "a", "o", "missing")] == [
        "v",
        NOT_A_STRING,
        NOT_A_STRING,
        NOT_A_STRING,
        DUPLICATE,
        DUPLICATE,
        None,
    ]


def test_json_rewrite_keeps_unicode_and_order() -> None:
    body = parse_body("application/json", '{"b":"é","apikey":"k","a":[1]}'.encode())
    assert body is not None
    assert body.without("apikey") == '{"b":"é","a":[1]}'.encode()
    assert body.without("missing") is None


def test_json_rewrite_survives_a_lone_surrogate() -> None:
    body = parse_body("application/json", b'{"x":"\\ud800","apikey":"k"}')
    assert body is not None
    assert body.without("apikey") == b'{"x":"\\ud800"}'


def test_form_literal_names_only() -> None:
    body = parse_body("application/x-www-form-urlencoded", b"apikey[]=a&apikey[1]=b")
    assert body is not None and body.value("apikey") is None


def test_form_rewrite_keeps_raw_bytes() -> None:
    raw = "q=caf\u00e9&apikey=k&x=%FF".encode()
    body = parse_body("application/x-www-form-urlencoded", raw)
    assert body is not None
    assert body.without("apikey") == "q=caf\u00e9&x=%FF".encode()


MULTIPART = (
    b"preamble\r\n"
    b'--B\r\nContent-Disposition: form-data; name="file"; filename="apikey.txt"\r\n'
    b"Content-Type: text/plain\r\n\r\nfile body\r\n--B not a delimiter\r\n"
    b"--B\r\ncontent-disposition: form-data; name=apikey\r\n\r\nsecret\r\n"
    b"--B\r\n\r\nnameless\r\n"
    b"--B--\r\nepilogue"
)


def test_multipart_reads_named_parts_and_not_filenames() -> None:
    body = parse_body("multipart/form-data; boundary=B", MULTIPART)
    assert body is not None
    assert body.value("apikey") == "secret"
    assert body.value("file") == "file body\r\n--B not a delimiter"
    assert body.value("filename") is None


def test_multipart_rewrite_removes_only_that_part() -> None:
    body = parse_body("multipart/form-data; boundary=B", MULTIPART)
    assert body is not None
    assert body.without("apikey") == MULTIPART.replace(
        b"--B\r\ncontent-disposition: form-data; name=apikey\r\n\r\nsecret\r\n", b""
    )
    assert body.without("nope") is None
