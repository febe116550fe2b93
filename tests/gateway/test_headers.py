"""Headers: order and spelling as sent, lookups ignoring case, whichever way the set was built."""

from __future__ import annotations

import pytest

from gateway.headers import Headers

RAW = [("Host", "a"), ("X-Dup", "1"), ("Accept", "*/*"), ("x-dup", "2"), ("X-DUP", "3")]


def _built(how: str) -> Headers:
    """The same headers, reached by construction or by adds before/after a first lookup."""
    if how == "constructed":
        return Headers(RAW)
    headers = Headers()
    if how == "looked-up-first":
        assert "host" not in headers
    for name, value in RAW:
        headers.add(name, value)
    return headers


BUILDS = pytest.mark.parametrize("how", ["constructed", "added", "looked-up-first"])


@BUILDS
def test_lookups_ignore_case_and_keep_every_value_in_order(how: str) -> None:
    headers = _built(how)
    assert headers.get("HOST") == "a"
    assert headers.get("x-dup") == "1"
    assert headers.get_all("X-dup") == ["1", "2", "3"]
    assert headers.get("missing") is None
    assert headers.get("missing", "d") == "d"
    assert headers.get_all("missing") == []
    assert "ACCEPT" in headers
    assert "nope" not in headers
    assert 1 not in headers
    assert headers.names() == ["host", "x-dup", "accept"]
    assert headers.lower_names() == ["host", "x-dup", "accept", "x-dup", "x-dup"]
    assert len(headers) == 5


@BUILDS
def test_set_replaces_all_values_at_the_first_position_with_the_new_spelling(how: str) -> None:
    headers = _built(how)
    headers.set("x-Dup", "new")
    assert headers.items() == [("Host", "a"), ("x-Dup", "new"), ("Accept", "*/*")]
    headers.set("Via", "v")
    headers.set("ACCEPT", "json")
    assert headers.items() == [("Host", "a"), ("x-Dup", "new"), ("ACCEPT", "json"), ("Via", "v")]
    assert headers.get("accept") == "json"
    assert headers.get_all("x-dup") == ["new"]


@BUILDS
def test_remove_drops_every_spelling_and_keeps_the_rest_in_order(how: str) -> None:
    headers = _built(how)
    headers.remove("X-DUP")
    headers.remove("absent")
    assert headers.items() == [("Host", "a"), ("Accept", "*/*")]
    assert "x-dup" not in headers
    headers.add("X-Dup", "again")
    assert headers.get_all("x-dup") == ["again"]
    assert headers.items()[-1] == ("X-Dup", "again")


@BUILDS
def test_bulk_changes_match_one_at_a_time(how: str) -> None:
    one, bulk = _built(how), _built(how)
    for name in ("HOST", "x-dup", "absent"):
        one.remove(name)
    bulk.remove_many(["HOST", "x-dup", "absent"])
    assert bulk.items() == one.items() == [("Accept", "*/*")]

    lowered = _built(how)
    lowered.remove_lowered(frozenset({"host", "x-dup"}))
    assert lowered.items() == [("Accept", "*/*")]
    assert _built(how).items_except(frozenset({"x-dup"})) == [("Host", "a"), ("Accept", "*/*")]
    many = _built(how)
    many.remove_lowered(frozenset({"x-dup", "via", "te", "upgrade", "accept", "absent"}))
    assert many.items() == [("Host", "a")]

    pairs = [("x-dup", "z"), ("New", "n"), ("host", "h")]
    one, bulk = _built(how), _built(how)
    for name, value in pairs:
        one.set(name, value)
    bulk.set_many(pairs)
    assert (
        bulk.items()
        == one.items()
        == [("host", "h"), ("x-dup", "z"), ("Accept", "*/*"), ("New", "n")]
    )

    extended = _built(how)
    extended.extend(iter([("A", "1"), ("a", "2")]))
    assert extended.get_all("A") == ["1", "2"]
    assert extended.items()[-2:] == [("A", "1"), ("a", "2")]


def test_iteration_sees_a_snapshot_and_copies_are_independent() -> None:
    headers = Headers(RAW)
    seen = []
    for name, _ in headers:
        seen.append(name)
        headers.remove(name)  # changing the set while iterating is allowed
    assert seen == [name for name, _ in RAW]
    assert len(headers) == 0

    original = Headers(RAW)
    assert original.get("host") == "a"  # lookups computed before copying
    copy = original.copy()
    copy.set("Host", "b")
    copy.add("Extra", "e")
    assert original.get("host") == "a"
    assert "extra" not in original
    assert copy.get("host") == "b"
    assert Headers(RAW).copy().get_all("x-dup") == ["1", "2", "3"]


def test_the_items_returned_are_copies() -> None:
    headers = Headers(RAW)
    items = headers.items()
    items.clear()
    assert len(headers) == 5
    source = list(RAW)
    built = Headers(source)
    built.remove("x-dup")
    assert source == RAW


def test_from_lowered_behaves_as_built_from_the_same_lower_case_items() -> None:
    lowered = [(name.lower(), value) for name, value in RAW]
    fast, plain = Headers.from_lowered(list(lowered)), Headers(lowered)
    for headers in (fast, plain):
        assert headers.get("X-DUP") == "1"
        assert headers.get_all("x-Dup") == ["1", "2", "3"]
        assert "ACCEPT" in headers
        headers.set("Host", "b")
        headers.remove("x-dup")
        headers.add("Via", "v")
        assert headers.get("via") == "v"
    assert fast.items() == plain.items() == [("Host", "b"), ("accept", "*/*"), ("Via", "v")]
    assert fast.lower_names() == plain.lower_names() == ["host", "accept", "via"]


def test_indexed_uses_the_given_lower_names_and_encodes_for_the_wire() -> None:
    headers = Headers.indexed(list(RAW), [name.lower() for name, _ in RAW])
    assert headers.get_all("X-DUP") == ["1", "2", "3"]
    headers.set("content-length", "3")
    headers.remove("x-dup")
    assert headers.items() == [("Host", "a"), ("Accept", "*/*"), ("content-length", "3")]
    assert headers.encoded() == [(b"Host", b"a"), (b"Accept", b"*/*"), (b"content-length", b"3")]
    assert Headers([("X-Name", "caf\xe9")]).encoded() == [(b"X-Name", b"caf\xe9")]
