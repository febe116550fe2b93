"""`lockgate admin user create|list|delete|set-password` on a database file."""

from __future__ import annotations

import argparse
import io
from pathlib import Path

import pytest
from argon2 import PasswordHasher

from control_plane.store.sql import create_store_engine
from control_plane.store.users import UserStore
from lockgate import user_command

CHEAP = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


def _run(tmp_path: Path, argv: list[str], stdin: str = "") -> tuple[int, str]:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="admin_command")
    user_command.add_parser(sub)
    args = parser.parse_args(["user", *argv])
    out = io.StringIO()
    env = {"LOCKGATE_DATA_DIR": str(tmp_path / "data")}
    code = user_command.run(args, env, stdin=io.StringIO(stdin), stdout=out, hasher=CHEAP)
    return code, out.getvalue()


def _users(tmp_path: Path) -> UserStore:
    return UserStore(create_store_engine(f"sqlite:///{tmp_path / 'data' / 'lockgate.db'}"), CHEAP)


def test_create_list_set_password_delete(tmp_path: Path) -> None:
    code, out = _run(
        tmp_path, ["create", "ops", "--role", "editor", "--password-stdin"], "a long password\n"
    )
    assert (code, out) == (0, "Created user 'ops' (role editor).\n")
    assert _users(tmp_path).authenticate("ops", "a long password") is not None
    code, out = _run(tmp_path, ["list"])
    assert code == 0
    assert out.splitlines()[0].split() == ["USERNAME", "ROLE", "CREATED", "LAST", "LOGIN"]
    assert out.splitlines()[1].split()[:2] == ["ops", "editor"]
    code, _ = _run(tmp_path, ["set-password", "ops", "--password-stdin"], "another password\n")
    assert code == 0
    assert _users(tmp_path).authenticate("ops", "another password") is not None
    assert _run(tmp_path, ["delete", "ops"]) == (0, "Deleted user 'ops'.\n")
    assert _users(tmp_path).get("ops") is None


def test_errors_are_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _run(tmp_path, ["create", "ops", "--role", "admin", "--password-stdin"], "a long password\n")
    code, _ = _run(
        tmp_path, ["create", "ops", "--role", "admin", "--password-stdin"], "a long password\n"
    )
    assert code == 1
    assert "error: a user named 'ops' exists already" in capsys.readouterr().err
    code, _ = _run(tmp_path, ["create", "x", "--role", "admin", "--password-stdin"], "short\n")
    assert code == 1
    assert "error: password: expected 8 to 1024 characters" in capsys.readouterr().err
    assert _run(tmp_path, ["delete", "nobody"])[0] == 1
    assert "error: no user named 'nobody'" in capsys.readouterr().err
    code, _ = _run(tmp_path, ["create", "y", "--role", "admin"])  # no terminal to prompt on
    assert code == 1
    assert "pass --password-stdin" in capsys.readouterr().err
