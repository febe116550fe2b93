"""Real control-plane and data-plane processes for the sync tests (and bench/sync.py), on free
loopback ports, plus a tiny upstream that answers 200 to everything."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.http_upstream import serve_http
from tests.e2e.lockgate_proc import ADMIN_TOKEN, free_port

HEADERS = {"Kong-Admin-Token": ADMIN_TOKEN}

# A data plane with options that have no LOCKGATE_* variable yet (snapshot cache, heartbeat
# interval), and optionally a node-side compile failure for snapshots with a given route name:
# a stand-in for anything that makes a node refuse a config the control plane accepted.
_DP_RUNNER = """
import json, logging, sys
from pathlib import Path
import uvloop
from data_plane import main
from lockgate import settings
opts = json.loads(sys.argv[1])
reject = opts.get("reject_route")
if reject:
    original = main.compile_runtime
    def compile_runtime(snapshot, *args, **kwargs):
        if any(r.name == reject for r in snapshot.routes):
            raise ValueError(f"route {reject} is refused by this node")
        return original(snapshot, *args, **kwargs)
    main.compile_runtime = compile_runtime
logging.basicConfig(level="INFO", format="%(asctime)s %(levelname)s %(name)s: %(message)s")
cache = opts.get("cache")
uvloop.run(main.serve(settings.data_plane(), snapshot_cache=Path(cache) if cache else None,
                      heartbeat_s=opts.get("heartbeat_s", 5.0)))
"""


def base_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCKGATE_", "DECK_"))}
    env.update(LOCKGATE_DATA_DIR=str(data_dir), LOCKGATE_ADMIN_TOKEN=ADMIN_TOKEN)
    return env


def scrape(url: str) -> dict[str, float]:
    """The unlabelled samples of a Prometheus text page, by name."""
    reply = httpx.get(url, timeout=10)
    reply.raise_for_status()
    out = {}
    for line in reply.text.splitlines():
        if line and not line.startswith("#") and "{" not in line:
            name, value = line.split()
            out[name] = float(value)
    return out


@dataclass
class Proc:
    name: str
    command: list[str]
    env: dict[str, str]
    log_path: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                self.command, env=self.env, stdout=log, stderr=subprocess.STDOUT
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig: int) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)

    def kill(self) -> None:
        """kill -9, and reap."""
        if self.alive():
            assert self.proc is not None
            self.proc.kill()
            self.proc.wait(timeout=10)

    def stop(self) -> None:
        if self.alive():
            assert self.proc is not None
            self.proc.send_signal(signal.SIGCONT)  # in case a test froze it
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)

    def log(self) -> str:
        return f"--- {self.name} ---\n" + self.log_path.read_text(errors="replace")[-4000:]


@dataclass
class ControlPlane(Proc):
    admin_port: int = 0
    cluster_port: int = 0
    ui_port: int = 0

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    def metric(self, name: str) -> float | None:
        """One unlabelled sample of the control plane's Prometheus `/metrics` (UI port)."""
        return scrape(f"http://127.0.0.1:{self.ui_port}/metrics").get(name)

    @property
    def cluster_address(self) -> str:
        return f"127.0.0.1:{self.cluster_port}"

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(method, self.admin_url + path, headers=HEADERS, timeout=10, **kwargs)

    def expected_hash(self) -> str:
        doc: dict[str, Any] = self.api("GET", "/clustering/expected-config-hash").json()
        return str(doc["expected_hash"])

    def data_planes(self) -> dict[str, dict[str, Any]]:
        doc = self.api("GET", "/clustering/data-planes").json()
        return {row["id"]: row for row in doc["data"]}

    def wait_ready(self, timeout_s: float = 60) -> None:
        wait_for(lambda: self._answers(), timeout_s, f"{self.name} Admin API", self)

    def _answers(self) -> bool:
        assert self.alive(), self.log()
        try:
            return self.api("GET", "/clustering/expected-config-hash").status_code == 200
        except httpx.HTTPError:
            return False


@dataclass
class DataPlane(Proc):
    node_id: str = ""
    proxy_port: int = 0
    status_port: int = 0

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    def status(self) -> dict[str, Any]:
        try:
            doc: dict[str, Any] = httpx.get(
                f"http://127.0.0.1:{self.status_port}/status", timeout=2
            ).json()
        except (httpx.HTTPError, ValueError):
            return {}
        return doc

    def ready(self) -> int:
        try:
            return httpx.get(
                f"http://127.0.0.1:{self.status_port}/status/ready", timeout=2
            ).status_code
        except httpx.HTTPError:
            return 0


@dataclass
class Cluster:
    """Processes of one test; `close()` stops them all and returns their logs."""

    root: Path
    data_dir: Path
    database_url: str
    procs: list[Proc] = field(default_factory=list)

    def control_plane(
        self, name: str = "cp", *, env: Mapping[str, str] | None = None
    ) -> ControlPlane:
        """A started, ready control plane; `env`: more settings (LOCKGATE_REDIS_URL...)."""
        admin, ui, cluster = free_port(), free_port(), free_port()
        cp_env = base_env(self.data_dir)
        cp_env.update(
            LOCKGATE_DATABASE_URL=self.database_url,
            LOCKGATE_ADMIN_LISTEN=f"127.0.0.1:{admin}",
            LOCKGATE_UI_LISTEN=f"127.0.0.1:{ui}",
            LOCKGATE_CLUSTER_LISTEN=f"127.0.0.1:{cluster}",
        )
        cp_env.update(env or {})
        cp = ControlPlane(
            name,
            [sys.executable, "-m", "lockgate", "control-plane"],
            cp_env,
            self.root / f"{name}.log",
            admin_port=admin,
            cluster_port=cluster,
            ui_port=ui,
        )
        self.procs.append(cp)
        cp.start()
        cp.wait_ready()
        return cp

    def data_plane(
        self,
        node_id: str,
        control_planes: list[str],
        *,
        options: Mapping[str, Any] | None = None,
        data_dir: Path | None = None,
        start: bool = True,
    ) -> DataPlane:
        """A data plane; with `options` (cache, heartbeat_s, reject_route) it runs through the
        test runner above, else as `python -m lockgate data-plane`."""
        proxy, status = free_port(), free_port()
        env = base_env(data_dir or self.data_dir)
        env.update(
            LOCKGATE_CONTROL_PLANE=",".join(control_planes),
            LOCKGATE_PROXY_LISTEN=f"127.0.0.1:{proxy}",
            LOCKGATE_STATUS_LISTEN=f"127.0.0.1:{status}",
            LOCKGATE_NODE_ID=node_id,
            LOCKGATE_NODE_HOSTNAME=node_id,
        )
        if options is None:
            command = [sys.executable, "-m", "lockgate", "data-plane"]
        else:
            command = [sys.executable, "-c", _DP_RUNNER, json.dumps(dict(options))]
        dp = DataPlane(
            node_id,
            command,
            env,
            self.root / f"{node_id}.log",
            node_id=node_id,
            proxy_port=proxy,
            status_port=status,
        )
        self.procs.append(dp)
        if start:
            dp.start()
        return dp

    def close(self) -> str:
        for proc in reversed(self.procs):
            proc.stop()
        return "\n".join(p.log() for p in self.procs if p.log_path.exists())


def wait_for(check: Callable[[], bool], timeout_s: float, what: str, *procs: Proc) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.05)
    logs = "\n".join(p.log() for p in procs)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}\n{logs}")


@contextmanager
def cluster_at(root: Path, database_url: str | None = None) -> Iterator[Cluster]:
    """A Cluster with its data in root/data (and its SQLite database there unless
    `database_url`); on exit its processes stop and their logs are printed (pytest shows
    captured output only when a test fails)."""
    data_dir = root / "data"
    cluster = Cluster(root, data_dir, database_url or f"sqlite:///{data_dir / 'lockgate.db'}")
    try:
        yield cluster
    finally:
        print(cluster.close())


class _Upstream(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:
        body = json.dumps({"path": self.path}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def upstream(*, backlog: int = 5) -> AbstractContextManager[str]:
    """An HTTP server on a free loopback port answering 200 to every GET; yields its URL."""
    return serve_http(_Upstream, backlog=backlog)
