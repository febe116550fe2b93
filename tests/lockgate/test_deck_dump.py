"""Turning `GET /config`'s document into the file `lockgate deck dump` writes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from lockgate.deck.dump import has_credentials, prepare, render_yaml
from lockgate.deck.loader import load_files

HASH = "sha256:" + "ab" * 32

EXPORTED: dict[str, Any] = {
    "_format_version": "3.0",
    "_info": {"select_tags": ["team-a"]},
    "services": [
        {
            "id": "s",
            "name": "svc",
            "host": "h",
            "port": 80,
            "routes": [
                {"id": "r", "name": "rt", "paths": ["/"], "plugins": [{"id": "p", "name": "x"}]}
            ],
        }
    ],
    "consumers": [
        {"id": "c", "username": "u", "keyauth_credentials": [{"id": "k", "key_hash": HASH}]}
    ],
    "plugins": [{"id": "g", "name": "pre-function", "config": {"access": ["a\nb\n"]}}],
}


def test_ids_go_unless_asked_for_but_credentials_keep_theirs() -> None:
    document = prepare(EXPORTED, with_id=False)
    assert document["_info"] == {"select_tags": ["team-a"]}
    [service] = document["services"]
    assert "id" not in service
    assert service["routes"] == [{"name": "rt", "paths": ["/"], "plugins": [{"name": "x"}]}]
    assert document["consumers"] == [
        {"username": "u", "keyauth_credentials": [{"id": "k", "key_hash": HASH}]}
    ]
    assert "id" not in document["plugins"][0]
    assert prepare(EXPORTED, with_id=True) == EXPORTED


def test_has_credentials() -> None:
    assert has_credentials(EXPORTED)
    assert not has_credentials({"consumers": [{"username": "u"}]})


def test_a_dump_is_a_valid_deck_file_with_readable_lua(tmp_path: Path) -> None:
    document = prepare(EXPORTED, with_id=True)
    text = render_yaml(document, header=["note"])
    assert text.startswith("# note\n")
    assert "- |\n" in text  # multi-line Lua as a literal block
    path = tmp_path / "dump.yaml"
    path.write_text(text, encoding="utf-8")

    loaded = load_files([str(path)], {})

    assert loaded.document == document
    assert yaml.safe_load(text) == document
