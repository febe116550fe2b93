"""The supervised topology: `lockgate up --data-planes 2`, two data planes supervised by the
control plane and sharing one proxy port (for the data-plane kill)."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.e2e.lockgate_proc import ADMIN_TOKEN, Lockgate


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
