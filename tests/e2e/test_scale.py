"""`lockgate up` scaling its local data planes under load: 1 -> 3 (`lockgate scale 3`) -> 1
(`PUT /clustering/local-nodes`) with zero failed requests through the shared proxy port, then a
killed node restarts."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.control_plane.port_block import free_port_block
from tests.e2e.lockgate_proc import ADMIN_TOKEN, Lockgate
from tests.e2e.sync_procs import upstream

pytestmark = pytest.mark.e2e

HEADERS = {"Kong-Admin-Token": ADMIN_TOKEN}


@pytest.fixture
def upstream_url() -> Iterator[str]:
    with upstream(backlog=256) as url:  # several proxies open pools at once
        yield url


@pytest.fixture
def lockgate(tmp_path: Path) -> Iterator[Lockgate]:
    lg = Lockgate(tmp_path / "data", tmp_path / "lockgate.log")
    # Below the ephemeral range: with SO_REUSEPORT, a process of the same user that picked the
    # same free port (another test run on this machine) would share the proxy port silently.
    base = free_port_block(4)
    lg.proxy_port, lg.status_port = base, base + 1  # node i answers on status_port + i - 1
    lg.start()  # `lockgate up`: one local data plane
    try:
        yield lg
    finally:
        code = lg.stop()
        print(lg.log())  # shown when the test fails
        assert code == 0


@dataclass
class Load:
    """`workers` clients sending GETs through the proxy until stopped. Each client reconnects
    every `reconnect_every` requests, as real client populations do, so new nodes get their
    share of connections; every response other than a 200 and every transport error is kept."""

    url: str
    workers: int = 4
    reconnect_every: int = 25
    ok: int = 0
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for _ in range(self.workers):
            thread = threading.Thread(target=self._run, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)

    def _run(self) -> None:
        while not self._stop.is_set():
            with httpx.Client(timeout=15) as client:
                for _ in range(self.reconnect_every):
                    if self._stop.is_set():
                        break
                    try:
                        response = client.get(self.url)
                        outcome = "" if response.status_code == 200 else response.text
                        if outcome:
                            outcome = f"{response.status_code}: {outcome[:200]}"
                    except httpx.HTTPError as exc:
                        outcome = repr(exc)
                    with self._lock:
                        if outcome:
                            self.failures.append(outcome)
                        else:
                            self.ok += 1
                    time.sleep(0.003)  # a steady, bounded load (2 cores run everything here)


def local_nodes(lg: Lockgate) -> dict[str, Any]:
    response = httpx.get(f"{lg.admin_url}/clustering/local-nodes", headers=HEADERS, timeout=5)
    assert response.status_code == 200, response.text
    doc: dict[str, Any] = response.json()
    return doc


def wait_for(check: Any, timeout_s: float, what: str, lg: Lockgate) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {local_nodes(lg)}\n{lg.log()}")


def proxy_connections(pid: int, port: int) -> int:
    """Established client connections on `port` that process `pid` holds (from /proc)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            cols = line.split()
            local_port = int(cols[1].rsplit(":", 1)[1], 16)
            if local_port == port and cols[3] == "01" and cols[9] in inodes:
                count += 1
    return count


def states(doc: dict[str, Any]) -> list[tuple[int, str]]:
    return [(n["index"], n["state"]) for n in doc["data"]]


def test_scale_1_3_1_under_load_without_failures_and_restart(
    lockgate: Lockgate, upstream_url: str
) -> None:
    lg = lockgate
    with httpx.Client(base_url=lg.admin_url, headers=HEADERS, timeout=10) as api:
        scale_under_load(lg, api, upstream_url)


def scale_under_load(lg: Lockgate, api: httpx.Client, upstream_url: str) -> None:
    assert api.post("/services", json={"name": "up", "url": upstream_url}).status_code == 201
    reply = api.post("/services/up/routes", json={"name": "load", "paths": ["/load"]})
    assert reply.status_code == 201, reply.text
    wait_for(
        lambda: httpx.get(f"{lg.proxy_url}/load", timeout=5).status_code == 200, 20, "route", lg
    )
    first = local_nodes(lg)
    assert first["desired"] == 1
    assert states(first) == [(1, "running")]
    assert first["data"][0]["status_port"] == lg.status_port

    load = Load(f"{lg.proxy_url}/load")
    load.start()
    try:
        time.sleep(0.5)
        scaled = subprocess.run(
            [sys.executable, "-m", "lockgate", "scale", "3"],
            env=lg.env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert scaled.returncode == 0, scaled.stdout + scaled.stderr
        assert scaled.stdout.splitlines()[0] == "Scaling local data planes to 3."
        assert "  3 desired: 3 running" in scaled.stdout.splitlines()
        three = local_nodes(lg)
        assert states(three) == [(1, "running"), (2, "running"), (3, "running")]
        assert [n["status_port"] for n in three["data"]] == [lg.status_port + i for i in range(3)]
        pids = {n["index"]: n["pid"] for n in three["data"]}
        assert pids[1] == first["data"][0]["pid"]
        # Every node registered with the control plane, and the new ones take traffic.
        registered = api.get("/clustering/data-planes").json()["data"]
        assert {n["node_id"] for n in three["data"]} <= {row["id"] for row in registered}
        wait_for(
            lambda: all(proxy_connections(pids[i], lg.proxy_port) > 0 for i in (2, 3)),
            15,
            "connections on the new nodes",
            lg,
        )
        time.sleep(0.5)

        down = api.put("/clustering/local-nodes", json={"count": 1})
        assert down.status_code == 200, down.text
        assert states(down.json()) == [(1, "running"), (2, "draining"), (3, "draining")]
        wait_for(lambda: states(local_nodes(lg)) == [(1, "running")], 30, "scale down", lg)
        for index in (2, 3):
            with pytest.raises(ProcessLookupError):
                os.kill(pids[index], 0)  # drained and gone
        time.sleep(0.5)
    finally:
        load.stop()
    assert load.failures == []
    assert load.ok > 300

    # A killed node restarts (with its status port and node id) and serves again.
    os.kill(pids[1], signal.SIGKILL)
    wait_for(
        lambda: [(n["state"], n["restarts"]) for n in local_nodes(lg)["data"]] == [("running", 1)],
        30,
        "the killed node to restart",
        lg,
    )
    (node,) = local_nodes(lg)["data"]
    assert node["pid"] != pids[1]
    assert (node["node_id"], node["status_port"]) == (
        first["data"][0]["node_id"],
        lg.status_port,
    )
    assert httpx.get(f"{lg.proxy_url}/load", timeout=5).status_code == 200
