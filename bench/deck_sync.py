"""Benchmark: a big decK sync into an empty control plane, and list pagination at that size.

A generated decK document (default: 10k services each with one route, 100k consumers each with
one key-auth key, and a key-auth plugin on every route) is sent with `POST /config` to a real
`lockgate control-plane` process on an empty database; the process's peak RSS (`VmHWM`) is read
from /proc. Then `GET /services?size=1000` and `GET /consumers?size=1000` pages (first, middle,
last) are fetched several times each and the median reported. Optionally the same file is
synced with the `lockgate deck sync` CLI (client parsing and validation included) into another
empty control plane.

    python bench/deck_sync.py                        # SQLite, and PostgreSQL when available
    python bench/deck_sync.py --database sqlite --consumers 100 --services 10   # smoke size

Targets (issue 3): sync under 60 s and under 500 MB on SQLite; a 1000-row page under 100 ms.
Results are printed as a table and written to bench/results/deck_sync.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-admin-token"
SYNC_TARGET_S = 60.0
RSS_TARGET_MB = 500.0
PAGE_TARGET_MS = 100.0


def generate(services: int, consumers: int) -> dict[str, Any]:
    """The decK document: `services` services with one route each (key-auth on the route),
    `consumers` consumers with one key each."""
    return {
        "_format_version": "3.0",
        "services": [
            {
                "name": f"service-{i:06d}",
                "url": f"http://upstream-{i % 100}.internal:8080/v1",
                "routes": [
                    {
                        "name": f"route-{i:06d}",
                        "paths": [f"/service-{i:06d}"],
                        "plugins": [{"name": "key-auth"}],
                    }
                ],
            }
            for i in range(services)
        ],
        "consumers": [
            {
                "username": f"consumer-{i:07d}",
                "keyauth_credentials": [{"key": f"key-{i:07d}-{(i * 7919) % 1000003:07d}"}],
            }
            for i in range(consumers)
        ],
    }


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _peak_rss_mb(pid: int) -> float:
    """The process's peak resident set size (VmHWM), in MB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc status")


def _cpu_s(pid: int) -> float:
    """CPU time (user + system) the process has used, in seconds: unlike wall time, it does
    not grow when other work shares the machine."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class ControlPlane:
    """A `lockgate control-plane` process on free loopback ports and its own data dir."""

    data_dir: Path
    database_url: str
    admin_port: int = field(default_factory=_free_port)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCKGATE_", "DECK_"))}
        env.update(
            LOCKGATE_DATA_DIR=str(self.data_dir),
            LOCKGATE_DATABASE_URL=self.database_url,
            LOCKGATE_ADMIN_TOKEN=TOKEN,
            LOCKGATE_ADMIN_URL=self.admin_url,
            LOCKGATE_ADMIN_LISTEN=f"127.0.0.1:{self.admin_port}",
            LOCKGATE_UI_LISTEN=f"127.0.0.1:{_free_port()}",
            LOCKGATE_CLUSTER_LISTEN=f"127.0.0.1:{_free_port()}",
        )
        return env

    def start(self, timeout_s: float = 60) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        log = (self.data_dir / "control-plane.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "lockgate", "control-plane"],
            env=self.env(),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
        )
        log.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"control plane exited:\n{self.log()}")
            try:
                if httpx.get(f"{self.admin_url}/status", headers=_auth(), timeout=2).is_success:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        raise RuntimeError(f"control plane not ready:\n{self.log()}")

    def peak_rss_mb(self) -> float:
        assert self.proc is not None
        return _peak_rss_mb(self.proc.pid)

    def cpu_s(self) -> float:
        assert self.proc is not None
        return _cpu_s(self.proc.pid)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def log(self) -> str:
        return (self.data_dir / "control-plane.log").read_text(errors="replace")[-4000:]


def _auth() -> dict[str, str]:
    return {"Kong-Admin-Token": TOKEN}


@contextmanager
def running(data_dir: Path, database_url: str) -> Iterator[ControlPlane]:
    cp = ControlPlane(data_dir, database_url)
    cp.start()
    try:
        yield cp
    finally:
        cp.stop()


def _pages(client: httpx.Client, path: str) -> list[str | None]:
    """Offsets of the first, middle and last 1000-row pages of a list endpoint."""
    offsets: list[str | None] = [None]
    params: dict[str, str] = {"size": "1000"}
    for _ in range(10_000):  # bounded: 10M rows
        body = client.get(path, params=params).raise_for_status().json()
        offset = body.get("offset")
        if not offset:
            break
        offsets.append(offset)
        params = {"size": "1000", "offset": offset}
    picked = [offsets[0], offsets[len(offsets) // 2], offsets[-1]]
    return list(dict.fromkeys(picked))


def page_latency_ms(admin_url: str, path: str, repeats: int) -> dict[str, float]:
    """Median and worst of `repeats` fetches of each picked page of `path` (size=1000)."""
    with httpx.Client(base_url=admin_url, headers=_auth(), timeout=30) as client:
        timings: list[float] = []
        for offset in _pages(client, path):
            params = {"size": "1000"} | ({"offset": offset} if offset else {})
            client.get(path, params=params).raise_for_status()  # warm
            for _ in range(repeats):
                start = time.perf_counter()
                reply = client.get(path, params=params).raise_for_status()
                timings.append((time.perf_counter() - start) * 1000)
                assert len(reply.json()["data"]) > 0
    return {"median_ms": statistics.median(timings), "max_ms": max(timings)}


@dataclass
class Result:
    database: str
    services: int
    routes: int
    plugins: int
    consumers: int
    credentials: int
    entities: int
    sync_s: float
    sync_cpu_s: float
    peak_rss_mb: float
    baseline_rss_mb: float
    resync_noop_s: float
    services_page: dict[str, float]
    consumers_page: dict[str, float]
    cli_sync_s: float | None = None


def _post_config(admin_url: str, body: bytes) -> tuple[float, dict[str, Any]]:
    start = time.perf_counter()
    reply = httpx.post(
        f"{admin_url}/config",
        content=body,
        headers={**_auth(), "content-type": "application/json"},
        timeout=900,
    )
    elapsed = time.perf_counter() - start
    if not reply.is_success:
        raise RuntimeError(f"POST /config answered {reply.status_code}: {reply.text[:2000]}")
    answer: dict[str, Any] = reply.json()
    return elapsed, answer


def run_one(
    database: str,
    url_for: Callable[[Path], str],
    doc_path: Path,
    body: bytes,
    counts: dict[str, int],
    repeats: int,
    cli: bool,
    work: Path,
) -> Result:
    expected = sum(counts.values())
    with running(work / f"{database}-api", url_for(work / f"{database}-api")) as cp:
        baseline = cp.peak_rss_mb()
        cpu_before = cp.cpu_s()
        sync_s, answer = _post_config(cp.admin_url, body)
        sync_cpu_s = cp.cpu_s() - cpu_before
        peak = cp.peak_rss_mb()
        created = answer["summary"]["created"]
        if created != expected:
            raise RuntimeError(f"created {created} entities, expected {expected}")
        resync_s, again = _post_config(cp.admin_url, body)
        if again["summary"] != {"created": 0, "updated": 0, "deleted": 0}:
            raise RuntimeError(f"second sync was not a no-op: {again['summary']}")
        services_page = page_latency_ms(cp.admin_url, "/services", repeats)
        consumers_page = page_latency_ms(cp.admin_url, "/consumers", repeats)
    cli_s = None
    if cli:
        with running(work / f"{database}-cli", url_for(work / f"{database}-cli")) as cp:
            start = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "lockgate", "deck", "sync", str(doc_path)],
                env=cp.env(),
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
                cwd=ROOT,
            )
            cli_s = time.perf_counter() - start
            if done.returncode != 0 or f"Created: {expected}" not in done.stdout:
                raise RuntimeError(f"lockgate deck sync failed: {done.stderr[-2000:]}")
    return Result(
        database=database,
        **counts,
        entities=expected,
        sync_s=sync_s,
        sync_cpu_s=sync_cpu_s,
        peak_rss_mb=peak,
        baseline_rss_mb=baseline,
        resync_noop_s=resync_s,
        services_page=services_page,
        consumers_page=consumers_page,
        cli_sync_s=cli_s,
    )


@contextmanager
def postgres() -> Iterator[Callable[[Path], str] | str]:
    """A throwaway PostgreSQL server (tests/services/postgres.py) or why there is none."""
    try:
        sys.path.insert(0, str(ROOT))
        from tests.services.postgres import PostgresServer
    except ImportError as exc:
        yield f"pending: {exc}"
        return
    try:
        server = PostgresServer.start()
    except BaseException as exc:  # pytest.fail raises a BaseException subclass
        yield f"pending: cannot start PostgreSQL: {exc}"
        return
    try:
        yield lambda _dir: server.url(server.create_database())
    finally:
        server.stop()


def table(results: list[Result], skipped: dict[str, str]) -> str:
    rows = [
        (
            "database",
            "entities",
            "sync s",
            "sync CPU s",
            "peak RSS MB",
            "no-op resync s",
            "/services page ms",
            "/consumers page ms",
            "CLI sync s",
        )
    ]
    for r in results:
        rows.append(
            (
                r.database,
                str(r.entities),
                f"{r.sync_s:.1f}",
                f"{r.sync_cpu_s:.1f}",
                f"{r.peak_rss_mb:.0f}",
                f"{r.resync_noop_s:.1f}",
                f"{r.services_page['median_ms']:.1f} (max {r.services_page['max_ms']:.0f})",
                f"{r.consumers_page['median_ms']:.1f} (max {r.consumers_page['max_ms']:.0f})",
                "-" if r.cli_sync_s is None else f"{r.cli_sync_s:.1f}",
            )
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += [f"{name}: {why}" for name, why in skipped.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--services", type=int, default=10_000)
    parser.add_argument("--consumers", type=int, default=100_000)
    parser.add_argument("--database", choices=("sqlite", "postgres", "all"), default="all")
    parser.add_argument("--repeats", type=int, default=7, help="fetches per page")
    parser.add_argument("--no-cli", action="store_true", help="skip the CLI end-to-end run")
    parser.add_argument("--output", default=str(ROOT / "bench" / "results" / "deck_sync.json"))
    args = parser.parse_args(argv)
    load_before = os.getloadavg()

    counts = {
        "services": args.services,
        "routes": args.services,
        "plugins": args.services,  # key-auth on every route
        "consumers": args.consumers,
        "credentials": args.consumers,
    }
    document = generate(args.services, args.consumers)
    body = json.dumps(document).encode()
    del document
    results: list[Result] = []
    skipped: dict[str, str] = {}
    cli = not args.no_cli
    with tempfile.TemporaryDirectory(prefix="lockgate-bench-") as tmp:
        work = Path(tmp)
        doc_path = work / "kong.json"
        doc_path.write_bytes(body)

        def sqlite_url(path: Path) -> str:
            return f"sqlite:///{path / 'lockgate.db'}"

        if args.database in ("sqlite", "all"):
            results.append(
                run_one("sqlite", sqlite_url, doc_path, body, counts, args.repeats, cli, work)
            )
        if args.database in ("postgres", "all"):
            with postgres() as pg:
                if isinstance(pg, str):
                    skipped["postgres"] = pg
                else:
                    results.append(
                        run_one("postgres", pg, doc_path, body, counts, args.repeats, cli, work)
                    )
    print(table(results, skipped))
    report = {
        "benchmark": "deck_sync",
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            # Wall times are only comparable at similar load; CPU seconds are steadier.
            "load_average_before": load_before,
            "load_average_after": os.getloadavg(),
        },
        "targets": {
            "sync_s": SYNC_TARGET_S,
            "peak_rss_mb": RSS_TARGET_MB,
            "page_ms": PAGE_TARGET_MS,
        },
        "results": [asdict(r) for r in results],
        "skipped": skipped,
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
