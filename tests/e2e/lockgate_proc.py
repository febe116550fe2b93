"""Start and stop a real `lockgate up` for end-to-end tests, on free loopback ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

ADMIN_TOKEN = "e2e-admin-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Lockgate:
    data_dir: Path
    log_path: Path
    proxy_port: int = 0
    admin_port: int = 0
    ui_port: int = 0
    cluster_port: int = 0
    status_port: int = 0
    proc: subprocess.Popen[bytes] | None = None

    def __post_init__(self) -> None:
        (
            self.proxy_port,
            self.admin_port,
            self.ui_port,
            self.cluster_port,
            self.status_port,
        ) = (free_port() for _ in range(5))

    @property
    def proxy_url(self) -> str:
        return f"http://127.0.0.1:{self.proxy_port}"

    @property
    def admin_url(self) -> str:
        return f"http://127.0.0.1:{self.admin_port}"

    @property
    def status_url(self) -> str:
        return f"http://127.0.0.1:{self.status_port}"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("LOCKGATE_", "DECK_"))}
        env.update(
            LOCKGATE_DATA_DIR=str(self.data_dir),
            LOCKGATE_ADMIN_TOKEN=ADMIN_TOKEN,
            LOCKGATE_PROXY_LISTEN=f"127.0.0.1:{self.proxy_port}",
            LOCKGATE_ADMIN_LISTEN=f"127.0.0.1:{self.admin_port}",
            LOCKGATE_UI_LISTEN=f"127.0.0.1:{self.ui_port}",
            LOCKGATE_CLUSTER_LISTEN=f"127.0.0.1:{self.cluster_port}",
            LOCKGATE_STATUS_LISTEN=f"127.0.0.1:{self.status_port}",
            LOCKGATE_ADMIN_URL=self.admin_url,
        )
        return env

    def start(self) -> None:
        with self.log_path.open("ab") as log:  # the child keeps its own descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "lockgate", "up"],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.wait_ready()

    def wait_ready(self, timeout_s: float = 60) -> None:
        """Until the Admin API answers and the data plane runs the expected config."""
        deadline = time.monotonic() + timeout_s
        last = ""
        while time.monotonic() < deadline:
            assert self.proc is not None
            if self.proc.poll() is not None:
                raise AssertionError(f"lockgate up exited early:\n{self.log()}")
            try:
                expected = httpx.get(
                    f"{self.admin_url}/clustering/expected-config-hash",
                    headers={"Kong-Admin-Token": ADMIN_TOKEN},
                    timeout=2,
                ).json()["expected_hash"]
                status = httpx.get(f"{self.status_url}/status", timeout=2).json()
                if expected and status["config_hash"] == expected:
                    return
                last = f"expected {expected}, node has {status}"
            except (httpx.HTTPError, KeyError, ValueError) as exc:
                last = repr(exc)
            time.sleep(0.2)
        raise AssertionError(f"lockgate not ready: {last}\n{self.log()}")

    def stop(self) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]
