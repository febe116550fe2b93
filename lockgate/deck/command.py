"""`lockgate deck sync|diff|validate|dump`: the entry point, the only place reading the env.

Flags follow decK's: `--select-tag` (sync, diff, dump), `--json-output` and
`--no-mask-deck-env-vars-value` (sync, diff), `--sanitize` and `--with-id` (dump).

Wire-up (argparse): `add_parser(subparsers)` registers `deck`; after parsing, call
`run(args)`, which returns the process exit code (0 ok, 1 error; errors go to stderr as
`error: <message>`).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx

from lockgate.deck.client import AdminClient
from lockgate.deck.dump import (
    CREDENTIALS_NOTE,
    SANITIZED_NOTE,
    has_credentials,
    prepare,
    render_yaml,
)
from lockgate.deck.errors import DeckError
from lockgate.deck.fields import KINDS, TOP_LEVEL
from lockgate.deck.loader import load_files
from lockgate.deck.report import mask, render, render_json
from lockgate.deck.template import ENV_PREFIX

DEFAULT_ADMIN_URL = "http://localhost:8001"


def add_parser(
    subparsers: argparse._SubParsersAction[argparse.ArgumentParser],
) -> argparse.ArgumentParser:
    """Register `deck` and its subcommands on an argparse subparsers object.

    The parsed namespace has `deck_command` and `func=run`.
    """
    deck: argparse.ArgumentParser = subparsers.add_parser(
        "deck",
        help="decK-format declarative config against the Admin API",
        description="Apply, compare, check or export decK-format (3.0) declarative config.",
    )
    deck.set_defaults(func=run)
    commands = deck.add_subparsers(dest="deck_command", required=True, metavar="COMMAND")

    admin = argparse.ArgumentParser(add_help=False)
    admin.add_argument(
        "--admin-url", help=f"Admin API URL (LOCKGATE_ADMIN_URL, default {DEFAULT_ADMIN_URL})"
    )
    admin.add_argument("--admin-token", help="Admin API token (LOCKGATE_ADMIN_TOKEN)")

    files = argparse.ArgumentParser(add_help=False)
    files.add_argument("files", nargs="+", metavar="FILE", help="decK YAML or JSON state files")

    tags = argparse.ArgumentParser(add_help=False)
    tags.add_argument(
        "--select-tag",
        action="append",
        default=[],
        dest="select_tags",
        metavar="TAG",
        help="only entities carrying this tag (repeat: all tags required); "
        "overrides nothing: must equal the file's _info.select_tags if it has them",
    )

    output = argparse.ArgumentParser(add_help=False)
    output.add_argument(
        "--json-output",
        action="store_true",
        help="print the changes as JSON (decK's shape) instead of text",
    )
    output.add_argument(
        "--no-mask-deck-env-vars-value",
        action="store_true",
        dest="no_mask",
        help="show values substituted from DECK_ environment variables instead of [masked]",
    )

    commands.add_parser(
        "sync",
        parents=[admin, tags, output, files],
        help="make the gateway match the files (deletes what they lack)",
        description="Apply the merged files in one transaction; entities absent are deleted "
        "(within the select tags, if any).",
    )
    commands.add_parser(
        "diff",
        parents=[admin, tags, output, files],
        help="show what sync would change",
        description="Show what sync would create, update and delete, changing nothing.",
    )
    commands.add_parser(
        "validate",
        parents=[files],
        help="check the files locally",
        description="Check the files (format, entity types, fields, env templates) offline.",
    )
    dump = commands.add_parser(
        "dump",
        parents=[admin, tags],
        help="export the gateway's config as decK YAML",
        description="Export services, routes, consumers, plugins and key-auth credentials "
        "(as their stored key hashes, which a later sync keeps).",
    )
    dump.add_argument("-o", "--output-file", default="-", help="file to write (default stdout)")
    dump.add_argument("--with-id", action="store_true", help="keep every entity's id")
    dump.add_argument(
        "--sanitize",
        action="store_true",
        help="replace secrets (key hashes, secret plugin fields) by salted digests",
    )
    return deck


def run(
    args: argparse.Namespace,
    environ: Mapping[str, str] | None = None,
    *,
    transport: httpx.BaseTransport | None = None,
) -> int:
    """Run the parsed `deck` command; returns the exit code.

    `environ` defaults to `os.environ` (read here, once); `transport` replaces the network.
    """
    env = dict(os.environ if environ is None else environ)
    deck_env = {name: value for name, value in env.items() if name.startswith(ENV_PREFIX)}
    admin_url = (
        getattr(args, "admin_url", None) or env.get("LOCKGATE_ADMIN_URL") or DEFAULT_ADMIN_URL
    )
    admin_token = getattr(args, "admin_token", None) or env.get("LOCKGATE_ADMIN_TOKEN") or None
    secrets: frozenset[str] = frozenset()
    try:
        if args.deck_command == "validate":
            loaded = load_files(args.files, deck_env)
            print(f"valid: {_describe(loaded.document)}")
            return 0
        with AdminClient(admin_url, admin_token, transport=transport) as client:
            if args.deck_command == "dump":
                return _dump(client, args)
            loaded = load_files(args.files, deck_env)
            secrets = loaded.secrets
            document = scope_document(loaded.document, args.select_tags)
            result = client.apply(document, dry_run=args.deck_command == "diff")
            shown = frozenset() if args.no_mask else secrets
            write = render_json if args.json_output else render
            sys.stdout.write(write(result, shown))
            return 0
    except DeckError as exc:
        for message in exc.messages:
            print(f"error: {mask(message, secrets)}", file=sys.stderr)
        return 1


def scope_document(document: dict[str, Any], flags: list[str]) -> dict[str, Any]:
    """The document with `--select-tag` flags as its `_info.select_tags` (decK: a file that
    declares select tags must agree with the flags)."""
    if not flags:
        return document
    wanted = list(dict.fromkeys(flags))
    info = document.get("_info")
    info = dict(info) if isinstance(info, Mapping) else {}
    declared = info.get("select_tags")
    if declared and (not isinstance(declared, list) or set(declared) != set(wanted)):
        raise DeckError(
            f"--select-tag {', '.join(wanted)} differs from the file's _info.select_tags "
            f"{declared}: use one or the other"
        )
    info["select_tags"] = wanted
    return {**document, "_info": info}


def _dump(client: AdminClient, args: argparse.Namespace) -> int:
    exported = client.export(list(dict.fromkeys(args.select_tags)), sanitize=args.sanitize)
    document = prepare(exported, with_id=args.with_id)
    if args.sanitize:
        header: tuple[str, ...] = SANITIZED_NOTE
    else:
        header = CREDENTIALS_NOTE if has_credentials(document) else ()
    text = render_yaml(document, header=header)
    output = args.output_file
    if output == "-":
        sys.stdout.write(text)
        return 0
    try:
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise DeckError(f"{output}: cannot write the file: {exc.strerror or exc}") from exc
    print(f"wrote {_describe(document)} to {output}", file=sys.stderr)
    return 0


def _describe(document: Mapping[str, Any]) -> str:
    """`1 service, 2 routes, ...`: entity counts, nested ones included."""
    counts: dict[str, int] = {}

    def walk(kind: str, items: Iterable[Any]) -> None:
        for item in items:
            if not isinstance(item, dict):
                continue
            counts[kind] = counts.get(kind, 0) + 1
            for key, child in KINDS[kind].children.items():
                walk(child, item.get(key) or [])

    for key, kind in TOP_LEVEL.items():
        walk(kind, document.get(key) or [])
    parts = [f"{n} {kind}{'' if n == 1 else 's'}" for kind, n in counts.items()]
    return ", ".join(parts) or "no entities"
