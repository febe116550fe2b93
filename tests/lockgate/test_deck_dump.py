"""Building the nested decK document from Admin API lists (no HTTP)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lockgate.deck.dump import AdminState, build_document, render_yaml
from lockgate.deck.loader import load_files


def state(**lists: list[dict[str, Any]]) -> AdminState:
    empty: dict[str, list[dict[str, Any]]] = {
        "services": [],
        "routes": [],
        "consumers": [],
        "plugins": [],
        "keyauth_credentials": [],
    }
    return AdminState(**{**empty, **lists})


def test_plugin_scopes_nest_under_the_most_specific_entity() -> None:
    document = build_document(
        state(
            services=[{"id": "s", "name": "svc", "host": "h"}],
            routes=[{"id": "r", "name": "rt", "paths": ["/"], "service": {"id": "s"}}],
            consumers=[{"id": "c", "username": "alice"}, {"id": "d", "custom_id": "ext-1"}],
            plugins=[
                {
                    "id": "1",
                    "name": "p-route-service",
                    "route": {"id": "r"},
                    "service": {"id": "s"},
                },
                {
                    "id": "2",
                    "name": "p-service-consumer",
                    "service": {"id": "s"},
                    "consumer": {"id": "d"},
                },
                {"id": "3", "name": "p-consumer", "consumer": {"id": "c"}},
                {"id": "4", "name": "p-global", "service": None, "route": None},
            ],
        )
    )

    assert document == {
        "_format_version": "3.0",
        "services": [
            {
                "name": "svc",
                "host": "h",
                "routes": [
                    {
                        "name": "rt",
                        "paths": ["/"],
                        "plugins": [{"name": "p-route-service", "service": "svc"}],
                    }
                ],
                "plugins": [{"name": "p-service-consumer", "consumer": "ext-1"}],
            }
        ],
        "consumers": [
            {"username": "alice", "plugins": [{"name": "p-consumer"}]},
            {"custom_id": "ext-1"},
        ],
        "plugins": [{"name": "p-global"}],
    }


def test_dangling_references_keep_the_entity_visible() -> None:
    document = build_document(
        state(
            routes=[{"id": "r", "name": "orphan", "paths": ["/"], "service": {"id": "gone"}}],
            plugins=[{"id": "p", "name": "key-auth", "service": {"id": "gone"}}],
            keyauth_credentials=[{"id": "k", "consumer": {"id": "gone"}}],
        )
    )

    assert document == {
        "_format_version": "3.0",
        "routes": [{"name": "orphan", "paths": ["/"], "service": "gone"}],
        "plugins": [{"name": "key-auth", "service": "gone"}],
    }


def test_credentials_never_carry_a_key_or_hash() -> None:
    document = build_document(
        state(
            consumers=[{"id": "c", "username": "u"}],
            keyauth_credentials=[
                {
                    "id": "k2",
                    "consumer": {"id": "c"},
                    "key": "hash",
                    "key_hash": "h",
                    "ttl": 60,
                    "tags": ["t"],
                },
                {"id": "k1", "consumer": {"id": "c"}},
            ],
        )
    )

    assert document["consumers"] == [
        {
            "username": "u",
            "keyauth_credentials": [{"id": "k1"}, {"id": "k2", "ttl": 60, "tags": ["t"]}],
        }
    ]


def test_a_dump_is_a_valid_deck_file(tmp_path: Path) -> None:
    document = build_document(
        state(
            services=[
                {
                    "id": "s",
                    "name": "svc",
                    "host": "h",
                    "port": 80,
                    "created_at": 1,
                    "unknown_server_field": "x",
                }
            ],
            routes=[{"id": "r", "name": "rt", "paths": ["/"], "service": {"id": "s"}}],
            consumers=[{"id": "c", "username": "u"}],
            plugins=[{"id": "p", "name": "pre-function", "config": {"access": ["a\nb\n"]}}],
            keyauth_credentials=[{"id": "k", "consumer": {"id": "c"}}],
        ),
        with_id=True,
    )
    path = tmp_path / "dump.yaml"
    path.write_text(render_yaml(document, header=["note"]), encoding="utf-8")

    loaded = load_files([str(path)], {})

    assert loaded.document == document
    assert "unknown_server_field" not in document["services"][0]
    assert path.read_text().startswith("# note\n_format_version: '3.0'\n")
