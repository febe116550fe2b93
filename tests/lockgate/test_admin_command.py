"""`lockgate admin token create|list|revoke` against a real Admin API app (in process)."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from control_plane.admin.app import create_admin_app
from control_plane.store import Store, open_store
from lockgate import admin_command

BOOT = "boot-token"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'cp.db'}")
    yield opened
    opened.close()


@pytest.fixture
def transport(store: Store) -> Iterator[httpx.MockTransport]:
    """Forwards the command's HTTP calls to the Admin API app."""
    app = create_admin_app(store, BOOT, lambda _event: None)
    with TestClient(app) as client:

        def forward(request: httpx.Request) -> httpx.Response:
            assert request.url.host == "cp.example"
            answer = client.request(
                request.method,
                request.url.raw_path.decode(),
                headers=dict(request.headers),
                content=request.content,
            )
            return httpx.Response(
                answer.status_code, headers=answer.headers, content=answer.content
            )

        yield httpx.MockTransport(forward)


def _parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="lockgate")
    admin_command.add_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(list(argv))


ENV = {"LOCKGATE_ADMIN_URL": "http://cp.example", "LOCKGATE_ADMIN_TOKEN": BOOT}


def _run(transport: httpx.BaseTransport, *argv: str, env: dict[str, str] = ENV) -> int:
    return admin_command.run(_parse("admin", "token", *argv), env, transport=transport)


def test_create_prints_the_token_once_and_it_works(
    transport: httpx.MockTransport, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(transport, "create", "--name", "ci", "--role", "editor", "--ttl", "3600") == 0
    out = capsys.readouterr().out
    assert "Created admin token 'ci' (role editor, expires " in out
    token = next(line.strip() for line in out.splitlines() if line.strip().startswith("lgadm_"))
    assert "shown only once" in out
    with_new = {**ENV, "LOCKGATE_ADMIN_TOKEN": token}
    # An editor may not manage tokens: the command says so.
    assert _run(transport, "list", env=with_new) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: Forbidden: role 'editor' cannot GET /admin-tokens")


def test_list_shows_a_table_without_secrets(
    transport: httpx.MockTransport, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(transport, "create", "--name", "reader", "--role", "viewer")
    created = capsys.readouterr().out
    assert _run(transport, "list") == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split() == ["ID", "NAME", "ROLE", "CREATED", "LAST", "USED", "EXPIRES"]
    assert len(table) == 2
    assert " reader " in table[1] and " viewer " in table[1] and table[1].endswith("never")
    token = next(w for w in created.split() if w.startswith("lgadm_"))
    assert token not in "\n".join(table)


def test_revoke_by_name_and_unknown(
    transport: httpx.MockTransport, capsys: pytest.CaptureFixture[str]
) -> None:
    _run(transport, "create", "--name", "gone", "--role", "admin")
    capsys.readouterr()
    assert _run(transport, "revoke", "gone") == 0
    assert capsys.readouterr().out.strip() == "Revoked admin token 'gone'."
    assert _run(transport, "revoke", "gone") == 1
    assert capsys.readouterr().err.strip() == "error: no admin token with id or name 'gone'"


def test_clear_errors(transport: httpx.MockTransport, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run(transport, "list", env={"LOCKGATE_ADMIN_URL": "http://cp.example"}) == 1
    assert "no admin token: set LOCKGATE_ADMIN_TOKEN" in capsys.readouterr().err
    wrong = {**ENV, "LOCKGATE_ADMIN_TOKEN": "wrong"}
    assert _run(transport, "list", env=wrong) == 1
    assert "refused the admin token" in capsys.readouterr().err
    _run(transport, "create", "--name", "dup", "--role", "viewer")
    capsys.readouterr()
    assert _run(transport, "create", "--name", "dup", "--role", "viewer") == 1
    assert "UNIQUE violation" in capsys.readouterr().err

    def down(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    assert _run(httpx.MockTransport(down), "list") == 1
    assert "cannot reach the Admin API at http://cp.example" in capsys.readouterr().err


def test_role_is_checked_by_the_parser() -> None:
    with pytest.raises(SystemExit):
        _parse("admin", "token", "create", "--name", "x", "--role", "root")
