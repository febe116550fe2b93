"""The soak (tests/faults/test_soak.py, and bench/soak.py for longer): the fault suite's
topology (one control plane on SQLite, two data planes) with the walkthrough, many consumers'
keys under steady load, every process's RSS, open fds and CPU sampled from /proc; the pass/fail
checks of a run.

The fake OpenAI runs in its own process here (the other fault tests use the in-process
`fake_openai` fixture, to look at what reached it): bench/soak.py drives hundreds of requests a
second from this process's threads, which must not share a GIL with the model."""

from __future__ import annotations

import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from control_plane.store.sql import SQLITE_POOL_SIZE
from tests.e2e.lockgate_proc import free_port
from tests.e2e.sync_procs import Cluster
from tests.faults.load import LoadReport, SteadyLoad
from tests.faults.planes import Planes
from tests.faults.proc_stats import Sample, sample
from tests.faults.walkthrough import UPSTREAM_KEY, KeyRing, walkthrough_load


@contextmanager
def fake_openai_process(log_path: Path, api_key: str = UPSTREAM_KEY) -> Iterator[str]:
    """`python -m tests.fakes.openai_server` on a free loopback port (its own process, so the
    test's load threads don't share a GIL with it); yields its URL."""
    port = free_port()
    command = [sys.executable, "-m", "tests.fakes.openai_server", "--port", str(port)]
    with log_path.open("ab") as log:
        proc = subprocess.Popen(
            [*command, "--api-key", api_key],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log_path.read_text(errors="replace")
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the fake OpenAI did not start"
                time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


FD_KINDS = ("tcp", "database", "other")


@dataclass(frozen=True)
class ProcessTrend:
    """One process over the measured window (after the warm-up)."""

    name: str
    samples: list[Sample]

    def _edge(self, values: list[int], last: bool) -> list[int]:
        n = max(1, len(values) // 4)  # a quarter of the window at each end
        return values[-n:] if last else values[:n]

    @property
    def rss_start_kib(self) -> int:
        return int(statistics.median(self._edge([s.rss_kib for s in self.samples], False)))

    @property
    def rss_end_kib(self) -> int:
        return int(statistics.median(self._edge([s.rss_kib for s in self.samples], True)))

    @property
    def rss_growth(self) -> float:
        """(end - start) / start, each the median of a quarter of the window."""
        return (self.rss_end_kib - self.rss_start_kib) / self.rss_start_kib

    def fds_start(self, kind: str = "total") -> int:
        """The most fds of `kind` (total, tcp, database, other) in the window's first quarter."""
        return max(self._edge([getattr(s.fds, kind) for s in self.samples], False))

    def fds_end(self, kind: str = "total") -> int:
        """The most fds of `kind` in the window's last quarter."""
        return max(self._edge([getattr(s.fds, kind) for s in self.samples], True))

    @property
    def cpu_s(self) -> float:
        return self.samples[-1].cpu_s - self.samples[0].cpu_s

    def summary(self) -> str:
        start, end = self.rss_start_kib / 1024, self.rss_end_kib / 1024
        return (
            f"{self.name}: RSS {start:.1f} -> {end:.1f} MiB ({self.rss_growth:+.2%}), "
            f"fds {self.fds_start()} -> {self.fds_end()} ("
            + ", ".join(f"{k} {self.fds_start(k)} -> {self.fds_end(k)}" for k in FD_KINDS)
            + "), "
            f"CPU {self.cpu_s:.1f} s over {len(self.samples)} samples"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "rss_start_kib": self.rss_start_kib,
            "rss_end_kib": self.rss_end_kib,
            "rss_growth": round(self.rss_growth, 5),
            "fds_start": {k: self.fds_start(k) for k in ("total", *FD_KINDS)},
            "fds_end": {k: self.fds_end(k) for k in ("total", *FD_KINDS)},
            "cpu_s": round(self.cpu_s, 2),
            "samples": {
                "fields": ["at_s", "rss_kib", "fds", "tcp_fds", "database_fds", "cpu_s"],
                "rows": [
                    [round(s.at_s, 2), s.rss_kib, s.fds.total, s.fds.tcp, s.fds.database, s.cpu_s]
                    for s in self.samples
                ],
            },
        }


@dataclass
class SoakResult:
    rate_per_s: float
    warmup_s: float
    duration_s: float
    keys: int
    workers: int
    load: LoadReport
    """The whole run, warm-up included."""
    measured_sent: int
    """Requests sent in the measured window."""
    trends: list[ProcessTrend]
    sqlite_bytes: list[float]
    """The control plane's `lockgate_sqlite_memory_bytes` at each sample (SQLite's own heap:
    page caches, statements), to tell its share of the RSS from the rest."""

    def summary(self) -> str:
        lines = [
            f"soak at {self.rate_per_s:g} req/s: {self.warmup_s:g} s warm-up, "
            f"{self.duration_s:g} s measured ({self.measured_sent} requests), "
            f"{self.keys} consumer keys, {self.workers} client workers",
            f"load (warm-up included): {self.load.summary()}",
        ]
        if self.sqlite_bytes:
            first, last, most = self.sqlite_bytes[0], self.sqlite_bytes[-1], max(self.sqlite_bytes)
            lines.append(
                f"cp SQLite heap {first / 2**20:.2f} -> {last / 2**20:.2f} MiB "
                f"(at most {most / 2**20:.2f})"
            )
        return "\n".join(lines + [t.summary() for t in self.trends])

    def as_dict(self) -> dict[str, Any]:
        report = self.load
        return {
            "rate_per_s": self.rate_per_s,
            "warmup_s": self.warmup_s,
            "duration_s": self.duration_s,
            "keys": self.keys,
            "workers": self.workers,
            "load": {
                "sent": report.sent,
                "measured_sent": self.measured_sent,
                "ok": report.ok,
                "failed": report.failed,
                "retried": report.retried,
                "statuses": dict(report.statuses),
                "duration_s": round(report.duration_s, 2),
                "p50_ms": round(report.percentile_ms(0.5), 2),
                "p99_ms": round(report.percentile_ms(0.99), 2),
                "failures": [f"{f.at_s:.2f}s {f.url} {f.outcome}" for f in report.failures[:20]],
            },
            "processes": {t.name: t.as_dict() for t in self.trends},
            "cp_sqlite_bytes": [int(b) for b in self.sqlite_bytes],
        }


def run_soak(
    root: Path,
    *,
    rate_per_s: float,
    warmup_s: float,
    duration_s: float,
    sample_every_s: float = 2.0,
    keys: int = 50,
    workers: int = 4,
    progress: Callable[[str], None] | None = None,
    print_logs: bool = True,
) -> SoakResult:
    """A control plane (SQLite) and two data planes with the walkthrough to a fake OpenAI;
    `keys` consumers; steady load over both data planes, rotating over the keys, for
    `warmup_s` (not measured) and then `duration_s`, sampling every process's RSS, open fds and
    CPU from /proc every `sample_every_s`. `print_logs`: print the processes' log tails at the
    end (for pytest, which shows them when the test fails)."""
    say = progress or (lambda _line: None)
    begun = time.monotonic()
    root.mkdir(parents=True, exist_ok=True)
    data = root / "data"
    cluster = Cluster(root, data, f"sqlite:///{data / 'lockgate.db'}")
    try:
        with fake_openai_process(root / "fake.log") as upstream:
            planes = Planes.start(cluster, upstream)
            names = [f"soak-{n}-secret" for n in range(keys)]
            for n, key in enumerate(names):
                planes.add_consumer(f"soak-{n}", key)
            pids = {p.name: p.proc.pid for p in cluster.procs if p.proc is not None}
            say(
                f"started {', '.join(f'{n} (pid {pid})' for n, pid in pids.items())} and "
                f"created {keys} consumers in {time.monotonic() - begun:.1f} s"
            )
            load = walkthrough_load(
                planes.urls,
                rate_per_s=rate_per_s,
                workers=workers,
                headers_for=KeyRing(names).headers_for,
                max_requests=int(rate_per_s * (warmup_s + duration_s) * 2) + 1000,
            )
            samples: dict[str, list[Sample]] = {name: [] for name in pids}
            sqlite_bytes: list[float] = []
            with load:
                warmup_sent = _warm_up(load, warmup_s, say)
                started = next_at = time.monotonic()
                while True:
                    now = time.monotonic()
                    for name, pid in pids.items():
                        assert Path(f"/proc/{pid}").exists(), f"{name} exited"
                        samples[name].append(sample(pid, now - started))
                    sqlite_bytes.append(planes.cp.metric("lockgate_sqlite_memory_bytes") or 0.0)
                    say(
                        f"{now - started:6.1f} s: {load.report.sent - warmup_sent} sent, "
                        f"{len(load.report.failures)} failed; "
                        f"cp SQLite {sqlite_bytes[-1] / 2**20:.2f} MiB, "
                        + ", ".join(
                            f"{n} {s[-1].rss_kib / 1024:.1f} MiB {s[-1].fds.total} fds"
                            for n, s in samples.items()
                        )
                    )
                    if now - started >= duration_s:
                        break
                    next_at += sample_every_s
                    time.sleep(max(0.0, min(next_at, started + duration_s) - time.monotonic()))
    finally:
        logs = cluster.close()
        if print_logs:
            print(logs)
    report = load.report
    return SoakResult(
        rate_per_s,
        warmup_s,
        duration_s,
        keys,
        workers,
        report,
        report.sent - warmup_sent,
        [ProcessTrend(name, s) for name, s in samples.items()],
        sqlite_bytes,
    )


def _warm_up(load: SteadyLoad, warmup_s: float, say: Callable[[str], None]) -> int:
    """Lets the load run `warmup_s`; the requests sent by then."""
    until = time.monotonic() + warmup_s
    while (left := until - time.monotonic()) > 0:
        time.sleep(min(5.0, left))
        say(f"warm-up: {load.report.sent} sent, {len(load.report.failures)} failed")
    return load.report.sent


MAX_RSS_GROWTH = 0.05
SQLITE_POOL_FDS = 2 * SQLITE_POOL_SIZE + 1
"""The control plane keeps at most SQLITE_POOL_SIZE SQLite connections (no overflow), each with
the database and WAL file open, plus the shared-memory file they share."""


def soak_checks(result: SoakResult) -> list[tuple[str, bool]]:
    """The soak's pass/fail checks, as (description, passed):

    - no failed request, and the load ran at >= 80% of the asked rate (the box kept up);
    - RSS growth after the warm-up under 5% in every process;
    - file descriptors: "other" fds (files, pipes, event loop) do not grow at all; TCP sockets
      grow by at most the client's concurrency (`workers` requests in flight can make a data
      plane's upstream pool keep that many keep-alive connections, newest first, for 60 s, more
      after a latency spike of a shared box than during the warm-up); SQLite files stay within
      the connection pool's bound (SQLITE_POOL_FDS)."""
    load = result.load
    achieved = result.measured_sent / result.duration_s
    out = [
        (f"no failed request ({load.failed} failed of {load.sent})", load.failed == 0),
        (
            f"achieved {achieved:.1f} req/s >= 80% of {result.rate_per_s:g}",
            achieved >= 0.8 * result.rate_per_s,
        ),
    ]
    for t in result.trends:
        other = (t.fds_start("other"), t.fds_end("other"))
        tcp = (t.fds_start("tcp"), t.fds_end("tcp"))
        database = t.fds_end("database")
        out += [
            (f"{t.name}: RSS growth {t.rss_growth:+.2%} < 5%", t.rss_growth < MAX_RSS_GROWTH),
            (f"{t.name}: other fds {other[0]} -> {other[1]}, no growth", other[1] <= other[0]),
            (
                f"{t.name}: TCP fds {tcp[0]} -> {tcp[1]}, at most +{result.workers}",
                tcp[1] <= tcp[0] + result.workers,
            ),
            (
                f"{t.name}: SQLite fds {database} <= {SQLITE_POOL_FDS}",
                database <= SQLITE_POOL_FDS,
            ),
        ]
    return out
