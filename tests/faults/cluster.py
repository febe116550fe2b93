"""Topologies for the fault suite, all with the walkthrough's config (README; Kong's how-to
"Authenticate OpenAI SDK clients with Key Authentication"): pre-function copies the bearer token
to `apikey`, key-auth checks it, ai-proxy-advanced sends the chat to a fake OpenAI.

- `Planes`: `lockgate control-plane` (one, or two on one database) and two
  `lockgate data-plane` processes (separate proxy ports), for the control-plane faults.
- `Supervised`: `lockgate up --data-planes 2` (two supervised data planes on one shared proxy
  port), for the data-plane kill.

The load (`walkthrough_load`) is what the how-to's OpenAI SDK script sends, at a steady rate.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.lockgate_proc import ADMIN_TOKEN, Lockgate
from tests.e2e.sync_procs import Cluster, ControlPlane, DataPlane, wait_for
from tests.e2e.test_walkthrough import CONSUMER_KEY, DECK_FILE, UPSTREAM_KEY
from tests.faults.load import LoadReport, SteadyLoad

__all__ = [
    "CHAT_PATH",
    "CONSUMER_KEY",
    "UPSTREAM_KEY",
    "LockgateUp",
    "Planes",
    "Supervised",
    "deck_sync",
    "figures",
    "walkthrough_load",
]

CHAT_PATH = "/anything/chat/completions"
"""Where the how-to's OpenAI SDK client posts (base URL `<proxy>/anything`)."""

CHAT_BODY = {"model": "gpt-4o", "messages": [{"role": "user", "content": "Say hello."}]}


def chat_headers(key: str = CONSUMER_KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}


def walkthrough_load(
    urls: Sequence[str], *, rate_per_s: float = 40.0, workers: int = 4, path: str = CHAT_PATH
) -> SteadyLoad:
    """The how-to's chat request, signed with the consumer's key, at `rate_per_s` in total."""
    return SteadyLoad(
        urls,
        path=path,
        method="POST",
        headers=chat_headers(),
        body=json.dumps(CHAT_BODY).encode(),
        rate_per_s=rate_per_s,
        workers=workers,
        max_requests=int(rate_per_s * 120),  # far more than a test runs; a bound all the same
    )


def chat(url: str, path: str = CHAT_PATH, key: str = CONSUMER_KEY) -> int:
    """One chat request through a proxy; its status (0 if it got no answer)."""
    try:
        return httpx.post(
            url + path, headers=chat_headers(key), json=CHAT_BODY, timeout=5
        ).status_code
    except httpx.HTTPError:
        return 0


def deck_sync(env: Mapping[str, str], workdir: Path, upstream: str) -> None:
    """`lockgate deck sync` of the how-to's file, its upstream pointing at `upstream`."""
    deck_file = workdir / "kong.yaml"
    deck_file.write_text(DECK_FILE.format(upstream=upstream))
    result = subprocess.run(
        [sys.executable, "-m", "lockgate", "deck", "sync", str(deck_file)],
        env={**env, "DECK_OPENAI_API_KEY": UPSTREAM_KEY},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr + result.stdout


def elapsed(check: Callable[[], bool], timeout_s: float, what: str, *procs: Any) -> float:
    """`wait_for`, returning how long it took (s)."""
    started = time.monotonic()
    wait_for(check, timeout_s, what, *procs)
    return time.monotonic() - started


def figures(name: str, report: LoadReport, **facts: float | int | str) -> str:
    """One line with the load's counts and the fault's recovery facts, printed for the record
    (`pytest -s tests/faults` shows them; docs/security.md quotes them)."""
    extra = ", ".join(
        f"{key} {value:.2f}" if isinstance(value, float) else f"{key} {value}"
        for key, value in facts.items()
    )
    line = (
        f"FAULT {name}: sent {report.sent}, ok {report.ok}, failed {report.failed}, "
        f"retried {report.retried}, p99 {report.percentile_ms(0.99):.0f} ms"
        + (f"; {extra}" if extra else "")
    )
    print(line)
    return line


@dataclass
class Planes:
    """Control planes (one, or several on one database) and two data planes, separate
    processes, the walkthrough synced."""

    cluster: Cluster
    cps: list[ControlPlane]
    nodes: list[DataPlane]

    @property
    def cp(self) -> ControlPlane:
        """The first control plane (the one nodes connect to first)."""
        return self.cps[0]

    @staticmethod
    def start(
        cluster: Cluster, upstream: str, *, heartbeat_s: float = 1.0, control_planes: int = 1
    ) -> Planes:
        """`control_planes` > 1 shares the cluster's database; every node knows them all and
        connects to the first."""
        cps = [cluster.control_plane(f"cp{i}") for i in range(control_planes)]
        cp = cps[0]
        deck_sync({**cp.env, "LOCKGATE_ADMIN_URL": cp.admin_url}, cluster.root, upstream)
        nodes = []
        for i in range(2):
            node = cluster.data_plane(f"dp{i}", [c.cluster_address for c in cps], start=False)
            node.env["LOCKGATE_DP_HEARTBEAT_S"] = str(heartbeat_s)
            node.start()
            nodes.append(node)
        planes = Planes(cluster, cps, nodes)
        planes.wait_in_sync()
        return planes

    @property
    def urls(self) -> list[str]:
        return [node.proxy_url for node in self.nodes]

    def in_sync(self, cp: ControlPlane | None = None, config_hash: str | None = None) -> bool:
        """Every node runs the expected config (`config_hash` if given), by its own /status and
        by the control plane's /clustering/data-planes."""
        cp = cp or self.cp
        try:
            expected = cp.expected_hash()
            rows = cp.data_planes()
        except httpx.HTTPError:
            return False
        if not expected or (config_hash is not None and expected != config_hash):
            return False
        return all(
            node.status().get("config_hash") == expected
            and rows.get(node.node_id, {}).get("sync_status") == "in_sync"
            and rows[node.node_id]["config_hash"] == expected
            for node in self.nodes
        )

    def wait_in_sync(self, timeout_s: float = 30, cp: ControlPlane | None = None) -> float:
        cp = cp or self.cp
        return elapsed(lambda: self.in_sync(cp), timeout_s, "every node in sync", cp, *self.nodes)

    def add_route(self, name: str, cp: ControlPlane | None = None) -> tuple[str, str]:
        """A new route on the how-to's service; returns its path prefix and the config hash
        that has it (the snapshot is rebuilt shortly after the write)."""
        cp = cp or self.cp
        before = cp.expected_hash()
        reply = cp.api(
            "POST", "/services/example-service/routes", json={"name": name, "paths": [f"/{name}"]}
        )
        assert reply.status_code == 201, reply.text
        wait_for(lambda: cp.expected_hash() != before, 10, "the new config hash", cp)
        return f"/{name}", cp.expected_hash()


class LockgateUp(Lockgate):
    """`lockgate up --data-planes N` (tests.e2e.lockgate_proc runs plain `lockgate up`)."""

    def __init__(self, data_dir: Path, log_path: Path, data_planes: int) -> None:
        super().__init__(data_dir, log_path)
        self.data_planes = data_planes

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lockgate", "up", "--data-planes", str(self.data_planes)],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_ready()


@dataclass
class Supervised:
    """`lockgate up --data-planes 2`: the control plane supervises two local data planes that
    share one proxy port; node i answers /status on `status_port + i - 1`."""

    lockgate: Lockgate
    headers: dict[str, str] = field(default_factory=lambda: {"Kong-Admin-Token": ADMIN_TOKEN})

    def admin(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return httpx.request(
            method, self.lockgate.admin_url + path, headers=self.headers, timeout=10, **kwargs
        )

    def local_nodes(self) -> list[dict[str, Any]]:
        reply = self.admin("GET", "/clustering/local-nodes")
        assert reply.status_code == 200, reply.text
        nodes: list[dict[str, Any]] = reply.json()["data"]
        return nodes

    def data_planes(self) -> dict[str, dict[str, Any]]:
        return {
            row["id"]: row for row in self.admin("GET", "/clustering/data-planes").json()["data"]
        }

    def all_running_in_sync(self) -> bool:
        """Both local nodes running, and shown in sync (with their connection up) by the API."""
        try:
            nodes = self.local_nodes()
            rows = self.data_planes()
            expected = self.admin("GET", "/clustering/expected-config-hash").json()["expected_hash"]
        except (httpx.HTTPError, AssertionError):
            return False
        return len(nodes) == 2 and all(
            n["state"] == "running"
            and rows.get(n["node_id"], {}).get("sync_status") == "in_sync"
            and rows[n["node_id"]]["config_hash"] == expected
            for n in nodes
        )
