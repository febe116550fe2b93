"""Shared pieces of the backing-service fault tests and the soak: a gateway made of real
processes (one `lockgate control-plane`, two `lockgate data-plane`) with a chosen database and
optional Redis, a fake OpenAI upstream in its own process, the walkthrough's pipeline
(pre-function -> key-auth -> ai-proxy-advanced) configured through the Admin API, and
per-process RSS / open-fd sampling from /proc.

Everything listens on loopback only; every wait is bounded."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.lockgate_proc import free_port
from tests.e2e.sync_procs import ControlPlane, DataPlane, Proc, base_env, wait_for
from tests.faults.load import LoadReport, SteadyLoad

UPSTREAM_KEY = "sk-upstream-faults-0123456789"
ROUTE_PATH = "/llm"
CHAT_PATH = f"{ROUTE_PATH}/chat/completions"
CHAT_BODY = json.dumps(
    {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hello."}]}
).encode()

# Kong's walkthrough pipeline: the OpenAI SDK's `Authorization: Bearer <key>` becomes `apikey`.
_BEARER_TO_APIKEY = """\
local auth_header = kong.request.get_header("Authorization")
if auth_header and auth_header:find("^Bearer ") then
  kong.service.request.set_header("apikey", auth_header:sub(8))
end"""


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


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


@dataclass
class Gateway:
    """One control plane and two data planes (separate processes) on free loopback ports.
    `close()` stops them all and returns their logs' tails."""

    root: Path
    database_url: str
    redis_url: str | None = None
    upstream: str = ""
    """The fake OpenAI's URL, once `configure_llm_route` ran."""
    cp: ControlPlane | None = None
    dps: list[DataPlane] = field(default_factory=list)

    @property
    def procs(self) -> list[Proc]:
        return [p for p in (self.cp, *self.dps) if p is not None]

    @property
    def control(self) -> ControlPlane:
        assert self.cp is not None, "not started"
        return self.cp

    def proxies(self) -> list[str]:
        return [dp.proxy_url for dp in self.dps]

    def _env(self, **extra: str) -> dict[str, str]:
        env = base_env(self.root / "data")
        env.update(LOCKGATE_LOG_LEVEL="INFO", **extra)
        if self.redis_url is not None:
            env["LOCKGATE_REDIS_URL"] = self.redis_url
        return env

    def start(self, data_planes: int = 2) -> None:
        admin, ui, cluster = free_port(), free_port(), free_port()
        self.cp = ControlPlane(
            "cp",
            [sys.executable, "-m", "lockgate", "control-plane"],
            self._env(
                LOCKGATE_DATABASE_URL=self.database_url,
                LOCKGATE_ADMIN_LISTEN=f"127.0.0.1:{admin}",
                LOCKGATE_UI_LISTEN=f"127.0.0.1:{ui}",
                LOCKGATE_CLUSTER_LISTEN=f"127.0.0.1:{cluster}",
            ),
            self.root / "cp.log",
            admin_port=admin,
            cluster_port=cluster,
        )
        self.cp.start()
        self.cp.wait_ready()
        for n in range(1, data_planes + 1):
            proxy, status = free_port(), free_port()
            dp = DataPlane(
                f"dp{n}",
                [sys.executable, "-m", "lockgate", "data-plane"],
                self._env(
                    LOCKGATE_CONTROL_PLANE=self.cp.cluster_address,
                    LOCKGATE_PROXY_LISTEN=f"127.0.0.1:{proxy}",
                    LOCKGATE_STATUS_LISTEN=f"127.0.0.1:{status}",
                    LOCKGATE_NODE_ID=f"dp{n}",
                    LOCKGATE_NODE_HOSTNAME=f"dp{n}",
                ),
                self.root / f"dp{n}.log",
                node_id=f"dp{n}",
                proxy_port=proxy,
                status_port=status,
            )
            self.dps.append(dp)
            dp.start()
        self.wait_in_sync()

    def wait_in_sync(self, timeout_s: float = 60) -> None:
        """Until every data plane runs the control plane's current config."""

        def synced() -> bool:
            expected = self.control.expected_hash()
            return bool(expected) and all(
                dp.status().get("config_hash") == expected for dp in self.dps
            )

        wait_for(synced, timeout_s, "every data plane in sync", *self.procs)

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.control.api(method, path, **kwargs)

    def created(self, method: str, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        reply = self.api(method, path, json=body)
        assert reply.status_code in (200, 201), f"{method} {path}: {reply.status_code} {reply.text}"
        doc: dict[str, Any] = reply.json()
        return doc

    def configure_llm_route(self, upstream: str) -> None:
        """The `llm` service and the walkthrough pipeline on its route at ROUTE_PATH."""
        self.upstream = upstream
        self.created("POST", "/services", {"name": "llm", "url": upstream})
        self.add_llm_route("llm", ROUTE_PATH, upstream)

    def add_llm_route(self, name: str, path: str, upstream: str | None = None) -> None:
        """A route of the `llm` service with pre-function, key-auth and ai-proxy-advanced;
        returns once every data plane runs it."""
        upstream = upstream or self.upstream
        self.created("POST", "/services/llm/routes", {"name": name, "paths": [path]})
        plugins = f"/routes/{name}/plugins"
        self.created(
            "POST", plugins, {"name": "pre-function", "config": {"access": [_BEARER_TO_APIKEY]}}
        )
        self.created("POST", plugins, {"name": "key-auth", "config": {"key_names": ["apikey"]}})
        target = {
            "route_type": "llm/v1/chat",
            "auth": {"header_name": "Authorization", "header_value": f"Bearer {UPSTREAM_KEY}"},
            "model": {
                "provider": "openai",
                "name": "gpt-4o",
                "options": {"max_tokens": 64, "upstream_url": f"{upstream}/v1/chat/completions"},
            },
        }
        self.created(
            "POST", plugins, {"name": "ai-proxy-advanced", "config": {"targets": [target]}}
        )
        self.wait_in_sync()

    def add_consumer(self, name: str, key: str) -> None:
        self.created("POST", "/consumers", {"username": name})
        self.created("POST", f"/consumers/{name}/key-auth", {"key": key})

    def chat(self, proxy: str, key: str, route_path: str = ROUTE_PATH) -> httpx.Response:
        url = f"{proxy}{route_path}/chat/completions"
        return httpx.post(url, headers=bearer(key), content=CHAT_BODY, timeout=10)

    def chat_statuses(self, key: str, route_path: str = ROUTE_PATH) -> list[int]:
        """The status of one chat completion with `key` through each data plane."""
        return [self.chat(proxy, key, route_path).status_code for proxy in self.proxies()]

    def close(self) -> str:
        for proc in reversed(self.procs):
            proc.stop()
        return "\n".join(p.log() for p in self.procs if p.log_path.exists())


@contextmanager
def gateway(
    root: Path,
    database_url: str,
    upstream: str,
    *,
    redis_url: str | None = None,
    print_logs: bool = True,
) -> Iterator[Gateway]:
    """A started gateway with the LLM route configured; stopped on exit, when the tails of its
    processes' logs are printed (pytest shows them for a failed test)."""
    gw = Gateway(root, database_url, redis_url)
    try:
        gw.start()
        gw.configure_llm_route(upstream)
        yield gw
    finally:
        logs = gw.close()
        if print_logs:
            print(logs)


class KeyRing:
    """Keys the load rotates through, one per request; the test may add keys while it runs."""

    def __init__(self, keys: Sequence[str] = ()) -> None:
        self._keys = list(keys)
        self._lock = threading.Lock()

    def add(self, key: str) -> None:
        with self._lock:
            self._keys.append(key)

    def __len__(self) -> int:
        with self._lock:
            return len(self._keys)

    def headers_for(self, seq: int) -> dict[str, str]:
        with self._lock:
            key = self._keys[seq % len(self._keys)]
        return bearer(key)


# -- /proc sampling ----------------------------------------------------------------------------


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")


DATABASE_SUFFIXES = (".db", ".db-wal", ".db-shm", ".db-journal")


@dataclass(frozen=True)
class FdCounts:
    total: int
    tcp: int
    """TCP sockets (listening or connected): pools of keep-alive connections."""
    database: int
    """SQLite files (database, WAL, shared memory): one pair per pooled connection."""

    @property
    def other(self) -> int:
        """Files, pipes, event-loop fds, Unix sockets: a steady process keeps these constant."""
        return self.total - self.tcp - self.database


def fd_counts(pid: int) -> FdCounts:
    total = database = 0
    sockets: set[str] = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:  # closed meanwhile
            continue
        total += 1
        if target.startswith("socket:["):
            sockets.add(target[len("socket:[") : -1])
        elif target.endswith(DATABASE_SUFFIXES):
            database += 1
    tcp: set[str] = set()
    for table in ("tcp", "tcp6"):
        path = Path(f"/proc/{pid}/net/{table}")
        if path.exists():
            tcp.update(line.split()[9] for line in path.read_text().splitlines()[1:])
    return FdCounts(total, len(sockets & tcp), database)


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (/proc/<pid>/stat utime + stime)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / 100.0  # CLK_TCK is 100 on Linux


@dataclass(frozen=True)
class Sample:
    at_s: float
    rss_kib: int
    fds: FdCounts
    cpu_s: float


def sample(pid: int, at_s: float) -> Sample:
    return Sample(at_s, rss_kib(pid), fd_counts(pid), cpu_s(pid))


# -- soak --------------------------------------------------------------------------------------


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

    def summary(self) -> str:
        lines = [
            f"soak at {self.rate_per_s:g} req/s: {self.warmup_s:g} s warm-up, "
            f"{self.duration_s:g} s measured ({self.measured_sent} requests), "
            f"{self.keys} consumer keys, {self.workers} client workers",
            f"load (warm-up included): {self.load.summary()}",
        ]
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
    """A control plane (SQLite) and two data planes with the walkthrough pipeline to a fake
    OpenAI; `keys` consumers; steady load over both data planes, rotating over the keys, for
    `warmup_s` (not measured) and then `duration_s`, sampling every process's RSS, open fds and
    CPU from /proc every `sample_every_s`. `print_logs`: print the processes' log tails at the
    end (for pytest, which shows them when the test fails)."""
    say = progress or (lambda _line: None)
    begun = time.monotonic()
    root.mkdir(parents=True, exist_ok=True)
    data = root / "data"
    with (
        fake_openai_process(root / "fake.log") as upstream,
        gateway(root, f"sqlite:///{data / 'lockgate.db'}", upstream, print_logs=print_logs) as gw,
    ):
        names = [f"soak-{n}-secret" for n in range(keys)]
        for n, key in enumerate(names):
            gw.add_consumer(f"soak-{n}", key)
        pids = {p.name: p.proc.pid for p in gw.procs if p.proc is not None}
        say(
            f"started {', '.join(f'{n} (pid {pid})' for n, pid in pids.items())} and created "
            f"{keys} consumers in {time.monotonic() - begun:.1f} s"
        )

        load = SteadyLoad(
            gw.proxies(),
            path=CHAT_PATH,
            method="POST",
            body=CHAT_BODY,
            rate_per_s=rate_per_s,
            workers=workers,
            headers_for=KeyRing(names).headers_for,
            max_requests=int(rate_per_s * (warmup_s + duration_s) * 2) + 1000,
        )
        samples: dict[str, list[Sample]] = {name: [] for name in pids}
        with load:
            until = time.monotonic() + warmup_s
            while (left := until - time.monotonic()) > 0:
                time.sleep(min(5.0, left))
                say(f"warm-up: {load.report.sent} sent, {len(load.report.failures)} failed")
            warmup_sent = load.report.sent
            started = next_at = time.monotonic()
            while True:
                now = time.monotonic()
                for name, pid in pids.items():
                    assert Path(f"/proc/{pid}").exists(), f"{name} exited\n{gw.close()}"
                    samples[name].append(sample(pid, now - started))
                say(
                    f"{now - started:6.1f} s: {load.report.sent - warmup_sent} sent, "
                    f"{len(load.report.failures)} failed; "
                    + ", ".join(
                        f"{n} {s[-1].rss_kib / 1024:.1f} MiB {s[-1].fds.total} fds"
                        for n, s in samples.items()
                    )
                )
                if now - started >= duration_s:
                    break
                next_at += sample_every_s
                time.sleep(max(0.0, min(next_at, started + duration_s) - time.monotonic()))
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
    )


MAX_RSS_GROWTH = 0.05
SQLITE_POOL_FDS = 2 * 5 + 1
"""SQLAlchemy keeps up to 5 SQLite connections (QueuePool's pool_size), each with the database
and WAL file open, plus the shared-memory file they share."""


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
