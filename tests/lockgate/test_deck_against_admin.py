"""`lockgate deck` against the real Admin API app and store, in process: diff output, masking,
`--json-output`, select tags, and dump -> sync into an empty control plane."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from fastapi.testclient import TestClient

from control_plane.admin.app import create_admin_app
from control_plane.store import Store, open_store
from gateway.credentials import hash_key
from lockgate.deck.command import add_parser

TOKEN = "deck-test-token"

FILE = """\
_format_version: "3.0"
services:
- name: svc
  url: http://${{ env "DECK_UPSTREAM_HOST" }}:8080
  routes:
  - name: chat
    paths: [/chat]
    plugins:
    - name: key-auth
consumers:
- username: alice
  keyauth_credentials:
  - key: alice-key
plugins:
- name: ai-proxy-advanced
  config:
    targets:
    - route_type: llm/v1/chat
      auth:
        header_name: Authorization
        header_value: Bearer ${{ env "DECK_OPENAI_KEY" }}
      model: {provider: openai, name: gpt-4o}
"""


class ControlPlane:
    """A store and the Admin API app over it; `transport` routes the CLI's HTTP into the app."""

    def __init__(self, path: Path) -> None:
        self.store: Store = open_store(f"sqlite:///{path}")
        app = create_admin_app(self.store, TOKEN, lambda _event: None)
        self.client = TestClient(app)
        self.transport = httpx.MockTransport(self._forward)

    def _forward(self, request: httpx.Request) -> httpx.Response:
        reply = self.client.request(
            request.method,
            request.url.path,
            params=request.url.params,
            content=request.content,
            headers={
                k: v
                for k, v in request.headers.items()
                if k.lower() in ("content-type", "kong-admin-token")
            },
        )
        return httpx.Response(
            reply.status_code,
            content=reply.content,
            headers={"content-type": reply.headers.get("content-type", "application/json")},
        )

    def close(self) -> None:
        self.client.close()
        self.store.close()


@pytest.fixture
def cp(tmp_path: Path) -> Iterator[ControlPlane]:
    plane = ControlPlane(tmp_path / "cp.db")
    yield plane
    plane.close()


@pytest.fixture
def state_file(tmp_path: Path) -> str:
    path = tmp_path / "kong.yaml"
    path.write_text(FILE, encoding="utf-8")
    return str(path)


ENV = {
    "LOCKGATE_ADMIN_TOKEN": TOKEN,
    "DECK_UPSTREAM_HOST": "old.internal",
    "DECK_OPENAI_KEY": "sk-first",
}


def deck(cp: ControlPlane, *argv: str, **env: str) -> int:
    parser = argparse.ArgumentParser(prog="lockgate")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["deck", *argv])
    run: Callable[..., int] = args.func
    return run(args, {**ENV, **env}, transport=cp.transport)


def test_sync_then_diff_shows_a_json_diff_with_env_values_masked(
    cp: ControlPlane, state_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert deck(cp, "sync", state_file) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "creating service svc"
    assert out.endswith("Summary:\n  Created: 6\n  Updated: 0\n  Deleted: 0\n")

    assert deck(cp, "diff", state_file, DECK_UPSTREAM_HOST="new.internal") == 0

    lines = capsys.readouterr().out.splitlines()
    assert lines[0] == "updating service svc"
    assert lines[1] == " {"
    assert '-  "host": "old.internal",' in lines
    assert '+  "host": "[masked]",' in lines
    assert '   "port": 8080,' in lines  # unchanged fields are context
    assert lines[-4:] == ["Summary:", "  Created: 0", "  Updated: 1", "  Deleted: 0"]
    assert "new.internal" not in "\n".join(lines)
    # diff wrote nothing
    assert (
        cp.client.get("/services/svc", headers={"Kong-Admin-Token": TOKEN}).json()["host"]
        == "old.internal"
    )


def test_unmasked_diff_and_redacted_provider_keys(
    cp: ControlPlane, state_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    deck(cp, "sync", state_file)
    capsys.readouterr()

    env = {"DECK_UPSTREAM_HOST": "new.internal", "DECK_OPENAI_KEY": "sk-second"}
    assert deck(cp, "diff", state_file, "--no-mask-deck-env-vars-value", **env) == 0

    out = capsys.readouterr().out
    assert '+  "host": "new.internal",' in out
    assert "updating plugin ai-proxy-advanced (global)" in out
    # The provider key is a secret on the control plane: never shown, even unmasked.
    assert "sk-first" not in out and "sk-second" not in out
    assert '"header_value": "[redacted:' in out


def test_json_output_is_decks_shape(
    cp: ControlPlane, state_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    deck(cp, "sync", state_file)
    capsys.readouterr()

    assert deck(cp, "diff", state_file, "--json-output", DECK_UPSTREAM_HOST="new.internal") == 0

    body = json.loads(capsys.readouterr().out)
    assert body["summary"] == {"creating": 0, "updating": 1, "deleting": 0, "total": 1}
    assert body["changes"]["creating"] == body["changes"]["deleting"] == []
    [change] = body["changes"]["updating"]
    assert (change["kind"], change["name"]) == ("service", "svc")
    assert change["body"]["old"]["host"] == "old.internal"
    assert change["body"]["new"]["host"] == "[masked]"
    assert change["body"]["new"]["id"] == change["body"]["old"]["id"]
    assert (body["warnings"], body["errors"]) == ([], [])


def test_second_sync_reports_no_changes(
    cp: ControlPlane, state_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    deck(cp, "sync", state_file)
    capsys.readouterr()
    assert deck(cp, "sync", state_file) == 0
    assert capsys.readouterr().out == "Summary:\n  Created: 0\n  Updated: 0\n  Deleted: 0\n"


def test_select_tags_touch_only_tagged_entities(
    cp: ControlPlane, state_file: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    headers = {"Kong-Admin-Token": TOKEN}
    cp.client.post("/services", json={"name": "untouched", "host": "u"}, headers=headers)

    assert deck(cp, "sync", "--select-tag", "team-a", state_file) == 0
    capsys.readouterr()
    assert cp.client.get("/services/svc", headers=headers).json()["tags"] == ["team-a"]
    consumer = cp.client.get("/consumers/alice", headers=headers).json()
    assert consumer["tags"] == ["team-a"]

    smaller = tmp_path / "smaller.yaml"
    smaller.write_text(
        '_format_version: "3.0"\n_info: {select_tags: [team-a]}\n'
        "services: [{name: svc2, host: h2}]\n",
        encoding="utf-8",
    )
    assert deck(cp, "sync", str(smaller)) == 0
    out = capsys.readouterr().out
    assert "creating service svc2" in out
    assert "deleting service svc" in out and "deleting consumer alice" in out
    assert "untouched" not in out
    assert cp.client.get("/services/untouched", headers=headers).status_code == 200
    assert deck(cp, "sync", str(smaller)) == 0
    assert capsys.readouterr().out.startswith("Summary:\n  Created: 0\n  Updated: 0\n")

    assert deck(cp, "diff", "--select-tag", "team-b", str(smaller)) == 1
    assert "differs from the file's _info.select_tags" in capsys.readouterr().err


def test_dump_then_sync_into_an_empty_control_plane_recreates_the_state(
    cp: ControlPlane, state_file: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deck(cp, "sync", state_file)
    dumped = tmp_path / "dump.yaml"
    assert deck(cp, "dump", "--with-id", "-o", str(dumped)) == 0
    text = dumped.read_text()
    assert "alice-key" not in text
    assert f"key_hash: sha256:{hash_key('alice-key')}" in text

    empty = ControlPlane(tmp_path / "empty.db")
    try:
        assert empty.store.lookup_credential(hash_key("alice-key")) is None
        capsys.readouterr()
        assert deck(empty, "sync", str(dumped)) == 0
        assert "Created: 6" in capsys.readouterr().out
        match = empty.store.lookup_credential(hash_key("alice-key"))
        assert match is not None and match.consumer.username == "alice"
        redumped = tmp_path / "redump.yaml"
        assert deck(empty, "dump", "--with-id", "-o", str(redumped)) == 0
        assert yaml.safe_load(redumped.read_text()) == yaml.safe_load(text)
        capsys.readouterr()
        assert deck(empty, "sync", str(dumped)) == 0
        assert capsys.readouterr().out.startswith("Summary:\n  Created: 0\n  Updated: 0\n")
    finally:
        empty.close()


def test_sanitized_dump_has_no_secrets(
    cp: ControlPlane, state_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    deck(cp, "sync", state_file)
    capsys.readouterr()
    assert deck(cp, "dump", "--sanitize") == 0
    out = capsys.readouterr().out
    assert out.startswith("# Sanitized dump")
    assert "sk-first" not in out and hash_key("alice-key") not in out
    document: dict[str, Any] = yaml.safe_load(out)
    assert document["services"][0]["name"] == "svc"
