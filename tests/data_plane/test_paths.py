"""Path normalization (Kong's kong.tools.uri.normalize with slash merging)."""

from __future__ import annotations

import pytest

from data_plane.paths import normalize_path, sanitize_postfix


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/", "/"),
        ("", ""),
        ("/v1/chat/completions", "/v1/chat/completions"),
        ("/a/./b/../c", "/a/c"),
        ("/a/b/..", "/a/"),
        ("/a/b/.", "/a/b/"),
        ("/a/.", "/a/"),
        ("/..", "/"),
        ("/../../etc/passwd", "/etc/passwd"),
        ("/a/..", "/"),
        ("/./", "/"),
        ("//", "/"),
        ("//a//b//", "/a/b/"),
        ("/a//b", "/a/b"),
        ("/a/..b/c.", "/a/..b/c."),
        ("/%41%62%7e", "/Ab~"),
        ("/%2e%2e/x", "/x"),
        ("/a/%2E/b", "/a/b"),
        ("/a%2fb", "/a%2Fb"),
        ("/a%2F..%2Fb", "/a%2F..%2Fb"),
        ("/caf%c3%a9", "/caf%C3%A9"),
        ("/%zz/%4", "/%zz/%4"),
        ("/100%25", "/100%25"),
    ],
)
def test_normalize_path(raw: str, expected: str) -> None:
    assert normalize_path(raw) == expected


@pytest.mark.parametrize("raw", ["/a/./b/../c//d/", "/%2541/%41", "/x/%2e%2E/y/."])
def test_normalize_path_is_idempotent(raw: str) -> None:
    once = normalize_path(raw)
    assert normalize_path(once) == once


@pytest.mark.parametrize(
    ("postfix", "expected"),
    [("", ""), (".", ""), ("..", ""), ("./x", "x"), ("../x", "x"), ("/x", "/x"), ("x", "x")],
)
def test_sanitize_postfix(postfix: str, expected: str) -> None:
    assert sanitize_postfix(postfix) == expected
