"""`lockgate admin token create|list|revoke`: manage Admin API tokens through the Admin API.

Wire-up (argparse): `add_parser(subparsers)` registers `admin`; after parsing, call
`run(args, environ)`, which returns the process exit code (0 ok, 1 error; errors go to stderr
as `error: <message>`). The Admin API URL and the calling token come from `--admin-url` /
`--admin-token` or LOCKGATE_ADMIN_URL / LOCKGATE_ADMIN_TOKEN; creating tokens needs the admin
role.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import httpx

from lockgate import user_command

DEFAULT_ADMIN_URL = "http://localhost:8001"
TOKEN_HEADER = "Kong-Admin-Token"  # noqa: S105 (a header name, not a secret)
ROLES = ("admin", "editor", "viewer")


class CommandError(Exception):
    """A failure to report as `error: <message>`."""


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register `admin token create|list|revoke`; the namespace gets `admin_command`,
    `admin_action` and `func=run`."""
    admin: argparse.ArgumentParser = subparsers.add_parser(
        "admin", help="Admin API access: admin tokens", description="Manage Admin API access."
    )
    admin.set_defaults(func=run)
    admin_sub = admin.add_subparsers(dest="admin_command", required=True, metavar="COMMAND")
    token = admin_sub.add_parser(
        "token",
        help="create, list or revoke admin tokens",
        description="Admin tokens: roles admin (everything), editor (entity writes), "
        "viewer (reads).",
    )
    commands = token.add_subparsers(dest="admin_action", required=True, metavar="COMMAND")

    connection = argparse.ArgumentParser(add_help=False)
    connection.add_argument(
        "--admin-url", help=f"Admin API URL (LOCKGATE_ADMIN_URL, default {DEFAULT_ADMIN_URL})"
    )
    connection.add_argument("--admin-token", help="an admin-role token (LOCKGATE_ADMIN_TOKEN)")

    create = commands.add_parser(
        "create",
        parents=[connection],
        help="create a token and print it (shown once)",
        description="Create an admin token. The token is printed once; only its hash is kept.",
    )
    create.add_argument("--name", required=True, help="unique name; audit entries show it")
    create.add_argument("--role", required=True, choices=ROLES, help="what the token may do")
    create.add_argument("--ttl", type=int, metavar="SECONDS", help="expire after SECONDS")
    commands.add_parser(
        "list", parents=[connection], help="list tokens", description="List admin tokens."
    )
    revoke = commands.add_parser(
        "revoke",
        parents=[connection],
        help="revoke a token by id or name",
        description="Revoke an admin token: it stops working at once.",
    )
    revoke.add_argument("token", metavar="ID|NAME", help="the token's id or name")
    user_command.add_parser(admin_sub)
    return admin


def run(
    args: argparse.Namespace,
    environ: Mapping[str, str] | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """Run the parsed `admin` command; returns the exit code.

    `environ` defaults to `os.environ` (read here, once); `transport` replaces the network.
    """
    env = os.environ if environ is None else environ
    if args.admin_command == "user":
        return user_command.run(args, env)
    admin_url = (args.admin_url or env.get("LOCKGATE_ADMIN_URL") or DEFAULT_ADMIN_URL).rstrip("/")
    token = args.admin_token or env.get("LOCKGATE_ADMIN_TOKEN") or ""
    headers = {TOKEN_HEADER: token} if token else {}
    try:
        if not token:
            raise CommandError("no admin token: set LOCKGATE_ADMIN_TOKEN or pass --admin-token")
        with httpx.Client(
            base_url=admin_url, headers=headers, transport=transport, timeout=30.0
        ) as client:
            if args.admin_action == "create":
                _create(client, args.name, args.role, args.ttl)
            elif args.admin_action == "list":
                _list(client)
            else:
                _revoke(client, args.token)
        return 0
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def _call(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    try:
        response = client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise CommandError(f"cannot reach the Admin API at {client.base_url}: {exc}") from exc
    if response.status_code == 401:
        raise CommandError(
            "the Admin API refused the admin token (check LOCKGATE_ADMIN_TOKEN or --admin-token)"
        )
    if response.status_code >= 400:
        raise CommandError(_message(response))
    return response


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("message"), str):
        return f"{body['message']} (HTTP {response.status_code})"
    return f"the Admin API answered HTTP {response.status_code}"


def _when(value: Any) -> str:
    if not isinstance(value, int | float):
        return "-"
    return datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _create(client: httpx.Client, name: str, role: str, ttl: int | None) -> None:
    body: dict[str, Any] = {"name": name, "role": role}
    if ttl is not None:
        body["ttl"] = ttl
    created = _call(client, "POST", "/admin-tokens", json=body).json()
    expiry = "never expires" if created.get("expires_at") is None else "expires "
    if created.get("expires_at") is not None:
        expiry += _when(created["expires_at"])
    print(f"Created admin token '{created['name']}' (role {created['role']}, {expiry}):")
    print(f"  {created['token']}")
    print("Store it now: it is shown only once.")


def _list(client: httpx.Client) -> None:
    tokens = _call(client, "GET", "/admin-tokens").json().get("data", [])
    rows = [
        (
            t["id"],
            t["name"],
            t["role"],
            _when(t.get("created_at")),
            _when(t.get("last_used_at")),
            _when(t.get("expires_at")) if t.get("expires_at") is not None else "never",
        )
        for t in tokens
    ]
    print(_table(("ID", "NAME", "ROLE", "CREATED", "LAST USED", "EXPIRES"), rows))


def _revoke(client: httpx.Client, ident: str) -> None:
    try:
        _call(client, "DELETE", f"/admin-tokens/{quote(ident, safe='')}")
    except CommandError as exc:
        if str(exc).startswith("Not found"):
            raise CommandError(f"no admin token with id or name '{ident}'") from None
        raise
    print(f"Revoked admin token '{ident}'.")


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(str(row[i])) for row in (header, *rows)) for i in range(len(header))]
    lines = [
        "  ".join(str(cell).ljust(w) for cell, w in zip(row, widths, strict=True))
        for row in (header, *rows)
    ]
    return "\n".join(line.rstrip() for line in lines)
