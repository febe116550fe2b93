"""Reading, merging and locally validating decK files (no Admin API involved)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lockgate.deck.errors import DeckError
from lockgate.deck.loader import load_files


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def errors_of(paths: list[str], env: dict[str, str] | None = None) -> tuple[str, ...]:
    with pytest.raises(DeckError) as info:
        load_files(paths, env or {})
    return info.value.messages


def test_files_merge_by_concatenating_lists(tmp_path: Path) -> None:
    a = write(
        tmp_path,
        "a.yaml",
        """
_format_version: "3.0"
_info: {select_tags: [team-a]}
services:
- name: s1
  url: http://one.example
plugins:
- name: key-auth
""",
    )
    b = write(
        tmp_path,
        "b.json",
        json.dumps(
            {
                "_format_version": "3.0",
                "_info": {"select_tags": ["team-a"]},
                "services": [{"name": "s2", "host": "two.example"}],
                "consumers": [{"username": "alice"}],
            }
        ),
    )

    loaded = load_files([a, b], {})

    assert loaded.document == {
        "_format_version": "3.0",
        "_info": {"select_tags": ["team-a"]},
        "services": [
            {"name": "s1", "url": "http://one.example"},
            {"name": "s2", "host": "two.example"},
        ],
        "plugins": [{"name": "key-auth"}],
        "consumers": [{"username": "alice"}],
    }
    assert loaded.secrets == frozenset()


def test_settings_keys_must_agree_between_files(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", '_format_version: "3.0"\n_info: {select_tags: [a]}\n')
    b = write(tmp_path, "b.yaml", '_format_version: "3.0"\n_info: {select_tags: [b]}\n')

    assert errors_of([a, b]) == (f"_info differs between {a} and {b}",)


def test_unquoted_format_version_is_accepted_and_sent_as_a_string(tmp_path: Path) -> None:
    a = write(tmp_path, "a.yaml", "_format_version: 3.0\n")
    assert load_files([a], {}).document == {"_format_version": "3.0"}


def test_format_version_is_required_and_must_be_3_0(tmp_path: Path) -> None:
    missing = write(tmp_path, "a.yaml", "services: []\n")
    old = write(tmp_path, "b.yaml", '_format_version: "1.1"\n')

    assert errors_of([missing]) == ('_format_version is required: add _format_version: "3.0"',)
    assert errors_of([old]) == (f"{old}: _format_version must be \"3.0\", got '1.1'",)


def test_unknown_and_unsupported_top_level_keys(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "kong.yaml",
        '_format_version: "3.0"\nupstreams: []\nservice: []\n',
    )

    assert errors_of([path]) == (
        f"{path}: unsupported entity type 'upstreams'",
        f"{path}: unknown top-level key 'service'",
    )


def test_unknown_fields_name_the_entity_at_every_level(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "kong.yaml",
        """
_format_version: "3.0"
services:
- name: example-service
  url: http://example.com
  foo: 1
  routes:
  - name: r1
    paths: [/a]
    path: /a
    plugins:
    - name: key-auth
      configs: {}
consumers:
- username: openai-client
  keyauth_credentials:
  - key: k
    hash: abc
  acls: [{group: g}]
plugins:
- {name: pre-function, scope: global}
""",
    )

    assert errors_of([path]) == (
        f"{path}: services[0] (example-service): unknown field 'foo'",
        f"{path}: services[0] (example-service).routes[0] (r1): unknown field 'path'",
        f"{path}: services[0] (example-service).routes[0] (r1).plugins[0] (key-auth): "
        "unknown field 'configs'",
        f"{path}: consumers[0] (openai-client).keyauth_credentials[0]: unknown field 'hash'",
        f"{path}: consumers[0] (openai-client): unsupported entity type 'acls'",
        f"{path}: plugins[0] (pre-function): unknown field 'scope'",
    )


def test_shapes_and_required_fields(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "kong.yaml",
        """
_format_version: "3.0"
services:
- name: no-host
routes: {name: r}
consumers:
- custom_id: ""
- just-a-string
plugins:
- config: {}
""",
    )

    assert errors_of([path]) == (
        f"{path}: services[0] (no-host): either 'url' or 'host' is required",
        f"{path}: routes: expected a list, got dict",
        f"{path}: consumers[0]: at least one of 'username' or 'custom_id' is required",
        f"{path}: consumers[1]: expected a mapping, got str",
        f"{path}: plugins[0]: missing required field 'name'",
    )


def test_duplicate_names_across_files(tmp_path: Path) -> None:
    a = write(
        tmp_path,
        "a.yaml",
        '_format_version: "3.0"\nservices: [{name: s, host: h, routes: [{name: r, paths: [/]}]}]\n',
    )
    b = write(
        tmp_path,
        "b.yaml",
        '_format_version: "3.0"\nroutes: [{name: r, paths: [/b]}]\n'
        "consumers: [{username: u}, {username: u}]\n",
    )

    assert errors_of([a, b]) == (
        f"{b}: routes[0] (r): duplicate route name 'r' (also {a}: services[0] (s).routes[0] (r))",
        f"{b}: consumers[1] (u): duplicate consumer username 'u' (also {b}: consumers[0] (u))",
    )


def test_env_errors_and_validation_errors_come_together(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "kong.yaml",
        '_format_version: "3.0"\n'
        "plugins: [{name: x, config: {k: '${{ env \"DECK_K\" }}'}, y: 1}]\n",
    )

    assert errors_of([path]) == (
        f"environment variable DECK_K is not set (used in {path})",
        f"{path}: plugins[0] (x): unknown field 'y'",
    )


def test_substituted_values_are_returned_as_secrets(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "kong.yaml",
        '_format_version: "3.0"\nplugins: [{name: x, config: {k: \'${{ env "DECK_K" }}\'}}]\n',
    )

    loaded = load_files([path], {"DECK_K": "s3cret"})

    assert loaded.document["plugins"] == [{"name": "x", "config": {"k": "s3cret"}}]
    assert loaded.secrets == frozenset({"s3cret"})


def test_unreadable_and_unparsable_files(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.yaml")
    broken = write(tmp_path, "broken.yaml", "services: [\n")
    scalar = write(tmp_path, "scalar.yaml", "just text\n")
    dated = write(tmp_path, "dated.yaml", '_format_version: "3.0"\n_info: {when: 2024-01-01}\n')

    messages = errors_of([missing, broken, scalar, dated])

    assert messages[0] == f"{missing}: cannot read the file: No such file or directory"
    assert messages[1].startswith(f"{broken}: invalid YAML or JSON: ")
    assert messages[2] == f"{scalar}: expected a mapping at the top, got str"
    assert messages[3].startswith(f"{dated}: holds a value JSON cannot represent (")
    assert len(messages) == 4
