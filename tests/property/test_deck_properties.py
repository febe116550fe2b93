"""decK files (`lockgate.deck`) under random documents.

Valid documents round-trip: written as YAML or JSON, loaded (`load_files`), flattened into
entities (`control_plane.declarative.parse_document`), dumped as `lockgate deck dump` writes
them (`prepare` + `render_yaml`) and loaded again, they give the same document and the same
entities; split over two files they merge into the same document. Invalid documents (random
text, random values in random places) give a clear error: `deck validate` exits 1 with
`error: ...` lines, the loader raises DeckError and the control plane's parser DocumentError,
never any other exception.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from control_plane.declarative import DocumentError, parse_document
from lockgate.deck.command import add_parser, run
from lockgate.deck.dump import CREDENTIALS_NOTE, prepare, render_yaml
from lockgate.deck.errors import DeckError
from lockgate.deck.loader import load_files
from tests.property.bounded import bounded

# Text that YAML must quote or block to keep: indicators, quotes, look-alikes of other types
# (`yes`, `null`, `1.0`, `~`), newlines (Lua code), leading/trailing spaces, non-ASCII.
_TRICKY = st.sampled_from(
    ["yes", "no", "null", "~", "1.0", "0x1F", "-", "? a", "*x", "&y", "!t", "%", "@", "`"]
)
_CHARS = st.characters(
    codec="utf-8",
    categories=("L", "N", "P", "S", "Zs"),
    include_characters="\n\t'\":#{}[],|>",
)
TEXT = st.one_of(_TRICKY, st.text(_CHARS, max_size=20)).filter(lambda s: "${{" not in s)
NAMES = st.text("abcdefghij-_.~0123456789", min_size=1, max_size=8)
TAGS = st.lists(st.text("abcxyz-_0123", min_size=1, max_size=5), max_size=2, unique=True)
JSON: st.SearchStrategy[Any] = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
PLUGIN_NAMES = st.sampled_from(["key-auth", "pre-function", "ai-proxy-advanced", "x-custom"])


def _optional(
    draw: st.DrawFn, entity: dict[str, Any], key: str, value: st.SearchStrategy[Any]
) -> None:
    if draw(st.booleans()):
        entity[key] = draw(value)


@st.composite
def _plugin(draw: st.DrawFn) -> dict[str, Any]:
    plugin: dict[str, Any] = {"name": draw(PLUGIN_NAMES)}
    _optional(draw, plugin, "config", st.dictionaries(TEXT, JSON, max_size=3))
    _optional(draw, plugin, "enabled", st.booleans())
    _optional(draw, plugin, "tags", TAGS)
    return plugin


@st.composite
def _route(draw: st.DrawFn, name: str) -> dict[str, Any]:
    route: dict[str, Any] = {"name": name}
    _optional(draw, route, "paths", st.lists(st.sampled_from(["/", "/a", "~/v\\d+$"]), max_size=2))
    _optional(draw, route, "methods", st.lists(st.sampled_from(["GET", "POST"]), max_size=2))
    _optional(draw, route, "hosts", st.lists(st.sampled_from(["a.test", "*.b.test"]), max_size=2))
    _optional(draw, route, "strip_path", st.booleans())
    _optional(draw, route, "tags", TAGS)
    _optional(draw, route, "plugins", st.lists(_plugin(), max_size=2))
    return route


@st.composite
def documents(draw: st.DrawFn) -> dict[str, Any]:
    """A valid decK 3.0 document: unique names, nested and top-level entities, references."""
    names = draw(st.lists(NAMES, min_size=8, max_size=8, unique=True))
    doc: dict[str, Any] = {"_format_version": draw(st.sampled_from(["3.0", 3.0]))}
    if draw(st.booleans()):
        doc["_info"] = {"select_tags": draw(TAGS)}
    services = []
    for i in range(draw(st.integers(0, 2))):
        service: dict[str, Any] = {"name": f"svc-{names[i]}"}
        if draw(st.booleans()):
            service["url"] = draw(st.sampled_from(["http://up.test", "https://up.test:8443/p"]))
        else:
            service["host"] = "up.test"
            _optional(draw, service, "port", st.integers(1, 65535))
            _optional(draw, service, "path", st.sampled_from(["/", "/p/q"]))
        _optional(draw, service, "tags", TAGS)
        _optional(draw, service, "routes", st.lists(_route(f"r-{names[i]}"), max_size=1))
        _optional(draw, service, "plugins", st.lists(_plugin(), max_size=2))
        services.append(service)
    if services:
        doc["services"] = services
    consumers = []
    for i in range(draw(st.integers(0, 2))):
        consumer: dict[str, Any] = {"username": f"user-{names[i]}"}
        _optional(draw, consumer, "custom_id", st.just(f"custom-{names[i]}"))
        _optional(
            draw,
            consumer,
            "keyauth_credentials",
            st.lists(st.fixed_dictionaries({"key": TEXT.filter(bool)}), max_size=2),
        )
        consumers.append(consumer)
    if consumers:
        doc["consumers"] = consumers
    if draw(st.booleans()) and services:
        route = draw(_route(f"top-{names[4]}"))
        route["service"] = draw(
            st.sampled_from([services[0]["name"], {"name": services[0]["name"]}])
        )
        doc["routes"] = [route]
    plugins = draw(st.lists(_plugin(), max_size=2))
    for plugin in plugins:
        if draw(st.booleans()) and consumers:
            plugin["consumer"] = consumers[0]["username"]
    if plugins:
        doc["plugins"] = plugins
    return doc


def _write(folder: Path, name: str, doc: dict[str, Any], as_json: bool) -> str:
    path = folder / (name + (".json" if as_json else ".yaml"))
    text = json.dumps(doc) if as_json else yaml.safe_dump(doc, allow_unicode=True)
    path.write_text(text, encoding="utf-8")
    return str(path)


def _normalized(doc: dict[str, Any]) -> dict[str, Any]:
    return {**doc, "_format_version": "3.0"}


def _entities(doc: dict[str, Any]) -> Any:
    parsed = parse_document(copy.deepcopy(doc))
    return (parsed.entities, parsed.select_tags)


@bounded(60)
@given(doc=documents(), as_json=st.booleans())
def test_valid_documents_round_trip_through_load_and_dump(
    doc: dict[str, Any], as_json: bool
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        loaded = load_files([_write(folder, "in", doc, as_json)], {}).document
        assert loaded == _normalized(doc)
        entities = _entities(loaded)

        dumped = folder / "dump.yaml"
        dumped.write_text(
            render_yaml(prepare(loaded, with_id=True), header=CREDENTIALS_NOTE), encoding="utf-8"
        )
        again = load_files([str(dumped)], {}).document
        assert again == loaded
        assert _entities(again) == entities


@bounded(40)
@given(doc=documents(), cut=st.integers(0, 3), as_json=st.booleans())
def test_a_document_split_over_two_files_merges_back(
    doc: dict[str, Any], cut: int, as_json: bool
) -> None:
    first: dict[str, Any] = {"_format_version": "3.0"}
    second: dict[str, Any] = {"_format_version": "3.0"}
    for key, value in doc.items():
        if isinstance(value, list):
            first[key], second[key] = value[:cut], value[cut:]
        elif key != "_format_version":
            first[key] = second[key] = value
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        whole = load_files([_write(folder, "whole", doc, as_json)], {}).document
        parts = [_write(folder, "a", first, as_json), _write(folder, "b", second, not as_json)]
        merged = load_files(parts, {}).document
    assert {k: v for k, v in merged.items() if v != []} == whole


def _validate(path: str) -> tuple[int, str, str]:
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["deck", "validate", path])
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = run(args, environ={})
    return code, out.getvalue(), err.getvalue()


def _check_clear_error(path: str) -> dict[str, Any] | None:
    """`deck validate` answers 0 or 1 with `error:` lines; the loader agrees; a loaded document
    goes through the control plane's parser with DocumentError as its only failure."""
    code, out, err = _validate(path)
    assert code in (0, 1)
    if code == 1:
        assert out == ""
        assert err.startswith("error: ") and "Traceback" not in err
        try:
            load_files([path], {})
        except DeckError as exc:
            assert exc.messages and all(m.strip() for m in exc.messages)
        else:
            raise AssertionError("validate failed but the loader did not")
        return None
    assert out.startswith("valid: ") and err == ""
    document = load_files([path], {}).document
    try:
        parse_document(copy.deepcopy(document))
    except DocumentError as exc:
        assert str(exc)
    return document


@bounded(80)
@given(
    text=st.text(st.characters(codec="utf-8"), max_size=60) | st.binary(max_size=40),
    suffix=st.sampled_from([".yaml", ".json"]),
)
def test_random_files_give_a_clear_error(text: str | bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / ("f" + suffix)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text, encoding="utf-8")
        _check_clear_error(str(path))


def _paths(value: Any, here: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every position in a document (mapping keys and list indexes)."""
    out = [here]
    if isinstance(value, dict):
        for key, item in value.items():
            out += _paths(item, (*here, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            out += _paths(item, (*here, index))
    return out


@bounded(120)
@given(doc=documents(), data=st.data(), as_json=st.booleans())
def test_documents_with_a_value_replaced_give_a_clear_error_or_load(
    doc: dict[str, Any], data: st.DataObject, as_json: bool
) -> None:
    """One position of a valid document gets a random value (or a random extra key): the file
    loads, or every layer refuses it with its own error."""
    positions = _paths(doc)
    where = data.draw(st.sampled_from(positions[1:] or positions))
    junk = data.draw(JSON | st.sampled_from(["", [], {}, [[]], {"": None}, "3.1", 3]))
    if where:
        parent: Any = doc
        for step in where[:-1]:
            parent = parent[step]
        parent[where[-1]] = junk
    if data.draw(st.booleans()):
        target = doc
        for step in where:
            if isinstance(target, dict | list):
                target = target[step]
        if isinstance(target, dict):
            key = data.draw(TEXT | st.sampled_from(["routes", "plugins", "service", "id"]))
            target[key] = copy.deepcopy(junk)
    with tempfile.TemporaryDirectory() as tmp:
        _check_clear_error(_write(Path(tmp), "doc", doc, as_json))


def _alias_bomb(levels: int) -> str:
    lines = ['_format_version: "3.0"', "a0: &a0 [" + ",".join(["lol"] * 10) + "]"]
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    "text",
    [_alias_bomb(9), "_format_version: '3.0'\nservices: &s [*s]\n"],
    ids=["billion-laughs", "self-reference"],
)
def test_yaml_alias_expansion_is_refused_quickly(tmp_path: Path, text: str) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text(text, encoding="utf-8")
    started = time.process_time()
    code, out, err = _validate(str(path))
    assert (code, out) == (1, "")
    assert "YAML aliases expand to more than" in err
    assert time.process_time() - started < 5
