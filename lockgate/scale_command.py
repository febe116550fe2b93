"""`lockgate scale N`: set how many local data planes the control plane runs, and follow them.

Wire-up (argparse): `add_parser(subparsers)` registers `scale`; after parsing, call
`run(args, environ)`, which returns the process exit code (0 when the nodes reached the count,
1 on an error or timeout; errors go to stderr as `error: <message>`). The Admin API URL and
token come from `--admin-url` / `--admin-token` or LOCKGATE_ADMIN_URL / LOCKGATE_ADMIN_TOKEN;
scaling needs the admin or editor role.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import httpx

DEFAULT_ADMIN_URL = "http://localhost:8001"
TOKEN_HEADER = "Kong-Admin-Token"  # noqa: S105 (a header name, not a secret)
PATH = "/clustering/local-nodes"
MAX_NODES = 64


class CommandError(Exception):
    """A failure to report as `error: <message>`."""


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register `scale N`; the namespace gets `count`, `wait`, `timeout` and `func=run`."""
    scale: argparse.ArgumentParser = subparsers.add_parser(
        "scale",
        help="set how many local data planes run (lockgate up)",
        description="Scale the data planes a control plane runs on its machine "
        "(`lockgate up`). New nodes start; extra nodes drain (in-flight requests and streams "
        "finish) before they exit. Waits until the nodes are running or gone.",
    )
    scale.set_defaults(func=run)
    scale.add_argument("count", type=int, metavar="N", help=f"data planes (1..{MAX_NODES})")
    scale.add_argument(
        "--no-wait", dest="wait", action="store_false", help="return once the change is accepted"
    )
    scale.add_argument(
        "--timeout",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="give up waiting after SECONDS (default 60)",
    )
    scale.add_argument(
        "--admin-url", help=f"Admin API URL (LOCKGATE_ADMIN_URL, default {DEFAULT_ADMIN_URL})"
    )
    scale.add_argument("--admin-token", help="an admin or editor token (LOCKGATE_ADMIN_TOKEN)")
    return scale


def run(
    args: argparse.Namespace,
    environ: Mapping[str, str] | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Run the parsed `scale` command; returns the exit code.

    `environ` defaults to `os.environ` (read here, once); `transport`, `sleep` and `clock`
    replace the network and time (tests).
    """
    env = os.environ if environ is None else environ
    admin_url = (args.admin_url or env.get("LOCKGATE_ADMIN_URL") or DEFAULT_ADMIN_URL).rstrip("/")
    token = args.admin_token or env.get("LOCKGATE_ADMIN_TOKEN") or ""
    try:
        if not 1 <= args.count <= MAX_NODES:
            raise CommandError(f"N must be from 1 to {MAX_NODES}, got {args.count}")
        if not token:
            raise CommandError("no admin token: set LOCKGATE_ADMIN_TOKEN or pass --admin-token")
        with httpx.Client(
            base_url=admin_url, headers={TOKEN_HEADER: token}, transport=transport, timeout=30.0
        ) as client:
            doc = _call(client, "PUT", json={"count": args.count})
            print(f"Scaling local data planes to {args.count}.", flush=True)
            last = ""
            deadline = clock() + args.timeout
            while True:
                line = progress(doc)
                if line != last:
                    print(f"  {line}", flush=True)
                    last = line
                if done(doc) or not args.wait:
                    break
                if clock() >= deadline:
                    raise CommandError(
                        f"the nodes did not settle within {args.timeout:g} s ({line})"
                    )
                sleep(0.5)
                doc = _call(client, "GET")
        if args.wait:
            print(f"{doc['desired']} data plane(s) running.", flush=True)
        return 0
    except CommandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


def done(doc: Mapping[str, Any]) -> bool:
    """The desired number of nodes run and no other node is left."""
    nodes = doc.get("data", [])
    return len(nodes) == doc.get("desired") and all(n.get("state") == "running" for n in nodes)


def progress(doc: Mapping[str, Any]) -> str:
    """One line: `3 desired: 1 running, 2 starting`."""
    states = Counter(str(n.get("state")) for n in doc.get("data", []))
    order = ("running", "starting", "restarting", "draining", "exited")
    parts = [f"{states[s]} {s}" for s in order if states[s]]
    return f"{doc.get('desired')} desired: " + (", ".join(parts) or "no nodes")


def _call(client: httpx.Client, method: str, **kwargs: Any) -> dict[str, Any]:
    try:
        response = client.request(method, PATH, **kwargs)
    except httpx.HTTPError as exc:
        raise CommandError(f"cannot reach the Admin API at {client.base_url}: {exc}") from exc
    if response.status_code == 401:
        raise CommandError(
            "the Admin API refused the admin token (check LOCKGATE_ADMIN_TOKEN or --admin-token)"
        )
    try:
        body: dict[str, Any] = response.json()
    except ValueError:
        body = {}
    if response.status_code >= 400:
        message = body.get("message") or response.text.strip() or "no details"
        raise CommandError(f"{message} (HTTP {response.status_code})")
    return body
