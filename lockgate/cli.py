"""`lockgate`: the command line. Reads the environment once here and passes settings down."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from lockgate import __version__, certs, settings


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lockgate", description="Lockgate: a self-hosted hybrid API and AI gateway."
    )
    parser.add_argument("--version", action="version", version=f"lockgate {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    up = sub.add_parser("up", help="run a control plane and data planes on this machine")
    up.add_argument(
        "--data-planes", type=int, default=1, metavar="N", help="data planes (default 1)"
    )

    sub.add_parser("control-plane", help="run the control plane (Admin API, UI, cluster sync)")
    sub.add_parser("data-plane", help="run one data plane (proxy and status port)")

    cert = sub.add_parser("cert", help="cluster certificates")
    cert_sub = cert.add_subparsers(dest="cert_command", required=True, metavar="COMMAND")
    gen = cert_sub.add_parser("generate", help="write the cluster certificate pair for mTLS")
    gen.add_argument("--cert", type=Path, help="certificate path (default: data dir/cluster.crt)")
    gen.add_argument("--key", type=Path, help="key path (default: data dir/cluster.key)")
    gen.add_argument("--force", action="store_true", help="overwrite an existing pair")

    from lockgate import admin_command, scale_command
    from lockgate.deck import command as deck_command

    deck_command.add_parser(sub)
    admin_command.add_parser(sub)
    scale_command.add_parser(sub)
    return parser


def _logging() -> None:
    logging.basicConfig(
        level=os.environ.get("LOCKGATE_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)  # one line of ours says what migrated


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        return _dispatch(args)
    except settings.SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "up":
        from lockgate.up import run_up

        if args.data_planes < 1:
            raise settings.SettingsError("--data-planes must be at least 1")
        return run_up(dict(os.environ), args.data_planes)
    if args.command == "control-plane":
        _logging()
        from control_plane.main import serve as serve_cp

        cp = settings.control_plane()
        asyncio.run(serve_cp(cp, revision_poll_s=cp.revision_poll_s, environ=dict(os.environ)))
        return 0
    if args.command == "data-plane":
        _logging()
        import uvloop

        from data_plane.main import serve as serve_dp

        dp = settings.data_plane()
        uvloop.run(
            serve_dp(
                dp,
                snapshot_cache=dp.snapshot_cache,
                heartbeat_s=dp.heartbeat_s,
                drain_s=dp.drain_s,
            )
        )
        return 0
    if args.command == "cert":
        base = settings.data_dir(os.environ)
        tls = settings.cluster_tls(os.environ, base)
        cert_path, key_path = args.cert or tls.cert, args.key or tls.key
        if not args.force and (cert_path.exists() or key_path.exists()):
            print(f"error: {cert_path} or {key_path} exists (use --force)", file=sys.stderr)
            return 1
        certs.generate(cert_path, key_path)
        print(f"wrote {cert_path} and {key_path}")
        return 0
    if args.command == "scale":
        from lockgate import scale_command

        return scale_command.run(args, dict(os.environ))
    if args.command == "admin":
        from lockgate import admin_command

        return admin_command.run(args, dict(os.environ))
    if args.command == "deck":
        from lockgate.deck import command as deck_command

        return deck_command.run(args, dict(os.environ))
    raise AssertionError(args.command)
