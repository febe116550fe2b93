"""`lockgate admin user create|list|delete|set-password`: web UI logins.

These work on the database directly (LOCKGATE_DATABASE_URL, or the SQLite file in
LOCKGATE_DATA_DIR), like the control plane itself, so an operator who lost every UI password
can still get in. Passwords come from `--password-stdin` (one line) or an interactive prompt,
never from a flag (which would land in shell history and `ps`).

Wire-up: `add_parser(admin_subparsers)` registers `user` under `lockgate admin`; after parsing,
`run(args, environ)` returns the exit code (0 ok, 1 error as `error: <message>` on stderr).
"""

from __future__ import annotations

import argparse
import getpass
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TextIO

from argon2 import PasswordHasher

from control_plane.store.errors import SchemaViolation, StoreError, UniqueViolation
from control_plane.store.protocol import ROLES
from control_plane.store.sql import SqlStore, create_store_engine
from control_plane.store.users import UserStore
from lockgate import settings

ACTOR = "cli"


class CommandError(Exception):
    """A failure to report as `error: <message>`."""


def add_parser(
    admin_subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register `user create|list|delete|set-password` under `lockgate admin`; the namespace
    gets `admin_command="user"` and `user_action`."""
    user: argparse.ArgumentParser = admin_subparsers.add_parser(
        "user",
        help="create, list or delete web UI users",
        description="Web UI users. Roles: admin (everything), editor (gateway config), "
        "viewer (read only). Works on the database directly.",
    )
    actions = user.add_subparsers(dest="user_action", required=True, metavar="COMMAND")
    create = actions.add_parser("create", help="create a user", description="Create a UI user.")
    create.add_argument("username")
    create.add_argument("--role", required=True, choices=ROLES, help="what the user may do")
    create.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    actions.add_parser("list", help="list users", description="List UI users.")
    delete = actions.add_parser(
        "delete", help="delete a user", description="Delete a UI user and end their sessions."
    )
    delete.add_argument("username")
    reset = actions.add_parser(
        "set-password",
        help="set a user's password",
        description="Set a UI user's password (ends their sessions).",
    )
    reset.add_argument("username")
    reset.add_argument(
        "--password-stdin", action="store_true", help="read the password from standard input"
    )
    return user


def run(
    args: argparse.Namespace,
    environ: Mapping[str, str],
    *,
    stdin: TextIO | None = None,
    stdout: TextIO | None = None,
    hasher: PasswordHasher | None = None,
) -> int:
    """Run the parsed `admin user` command against the database `environ` configures.
    `stdin`/`stdout` replace the process's; `hasher` replaces argon2's default cost (tests)."""
    out = stdout or sys.stdout
    try:
        cp = settings.control_plane(environ)
        cp.data_dir.mkdir(parents=True, exist_ok=True)
        engine = create_store_engine(cp.database_url)
        try:
            SqlStore(engine).migrate()
            _dispatch(args, UserStore(engine, hasher), stdin or sys.stdin, out)
        finally:
            engine.dispose()
        return 0
    except (CommandError, settings.SettingsError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _password(args: argparse.Namespace, stdin: TextIO) -> str:
    if args.password_stdin:
        return stdin.readline().rstrip("\r\n")
    if not stdin.isatty():
        raise CommandError("no terminal to prompt on: pass --password-stdin")
    first = getpass.getpass("Password: ")
    if getpass.getpass("Repeat it: ") != first:
        raise CommandError("the passwords differ")
    return first


def _problem(exc: StoreError) -> str:
    if isinstance(exc, UniqueViolation):
        return f"a user named '{exc.fields.get('username')}' exists already"
    if isinstance(exc, SchemaViolation):
        return "; ".join(f"{path}: {message}" for path, message in exc.messages)
    return str(exc)


def _dispatch(args: argparse.Namespace, users: UserStore, stdin: TextIO, out: TextIO) -> None:
    action = args.user_action
    try:
        if action == "create":
            user = users.create(args.username, _password(args, stdin), args.role, actor=ACTOR)
            print(f"Created user '{user.username}' (role {user.role}).", file=out)
        elif action == "list":
            rows = [("USERNAME", "ROLE", "CREATED", "LAST LOGIN")]
            rows += [
                (u.username, u.role, _when(u.created_at), _when(u.last_login_at))
                for u in users.list()
            ]
            widths = [max(len(r[i]) for r in rows) for i in range(4)]
            for row in rows:
                line = "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True))
                print(line.rstrip(), file=out)
        elif action == "delete":
            if not users.delete(args.username, actor=ACTOR):
                raise CommandError(f"no user named '{args.username}'")
            print(f"Deleted user '{args.username}'.", file=out)
        else:
            password = _password(args, stdin)
            if users.update(args.username, password=password, actor=ACTOR) is None:
                raise CommandError(f"no user named '{args.username}'")
            print(f"Set the password of '{args.username}'.", file=out)
    except StoreError as exc:
        raise CommandError(_problem(exc)) from None


def _when(value: int | None) -> str:
    if value is None:
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
