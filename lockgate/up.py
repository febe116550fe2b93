"""`lockgate up`: a control plane and N data planes on this machine, as separate processes.

State lives in LOCKGATE_DATA_DIR (default ./.lockgate): the SQLite database, the cluster
certificate pair and the data planes' node ids. Ctrl-C or SIGTERM stops every process cleanly.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import FrameType

from lockgate import certs, settings

STOP_GRACE_S = 15.0


def _wait_port(host: str, port: int, proc: subprocess.Popen[bytes], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _node_id(base: Path, index: int) -> str:
    path = base / f"data-plane-{index}.id"
    if path.exists():
        return path.read_text().strip()
    node_id = str(uuid.uuid4())
    path.write_text(node_id + "\n")
    return node_id


def _connect_host(listen: settings.Listen) -> str:
    return "127.0.0.1" if listen.host in ("0.0.0.0", "::", "") else listen.host


def run_up(env: Mapping[str, str], data_planes: int) -> int:
    cp = settings.control_plane(env)
    dp = settings.data_plane(env)
    cp.data_dir.mkdir(parents=True, exist_ok=True)
    if certs.ensure(cp.tls.cert, cp.tls.key):
        print(f"generated the cluster certificate {cp.tls.cert}", flush=True)
    base_env = dict(env)
    base_env["LOCKGATE_DATA_DIR"] = str(cp.data_dir)
    command = [sys.executable, "-m", "lockgate"]

    procs: list[subprocess.Popen[bytes]] = []
    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    control = subprocess.Popen([*command, "control-plane"], env=base_env)
    procs.append(control)
    if not _wait_port(_connect_host(cp.cluster_listen), cp.cluster_listen.port, control, 60):
        print("error: the control plane did not start (see its log above)", file=sys.stderr)
        return _shutdown(procs, failed=True)
    cluster = f"{_connect_host(cp.cluster_listen)}:{cp.cluster_listen.port}"
    for index in range(1, data_planes + 1):
        dp_env = dict(base_env)
        dp_env["LOCKGATE_CONTROL_PLANE"] = env.get("LOCKGATE_CONTROL_PLANE") or cluster
        dp_env["LOCKGATE_NODE_ID"] = _node_id(cp.data_dir, index)
        # Restarts serve the last config at once, even while the control plane is down.
        dp_env.setdefault(
            "LOCKGATE_DP_SNAPSHOT_CACHE", str(cp.data_dir / f"data-plane-{index}.snapshot")
        )
        status = dp.status_listen
        dp_env["LOCKGATE_STATUS_LISTEN"] = f"{status.host}:{status.port + index - 1}"
        procs.append(subprocess.Popen([*command, "data-plane"], env=dp_env))

    print(
        "\nLockgate is up:\n"
        f"  Proxy      {dp.proxy_listen.url()}   (KONNECT_PROXY_URL)\n"
        f"  Admin API  {cp.admin_listen.url()}\n"
        f"  Web UI     {cp.ui_listen.url()}\n"
        f"  Data planes: {data_planes} (status from {dp.status_listen.url()})\n"
        f"  Data dir   {cp.data_dir}\n"
        "Press Ctrl-C to stop.\n",
        flush=True,
    )
    while not stopping:
        for proc in procs:
            if proc.poll() is not None:
                role = "control plane" if proc is control else "a data plane"
                print(f"error: {role} exited with code {proc.returncode}", file=sys.stderr)
                return _shutdown(procs, failed=True)
        time.sleep(0.2)
    return _shutdown(procs, failed=False)


def _shutdown(procs: list[subprocess.Popen[bytes]], *, failed: bool) -> int:
    # Data planes first (they drain), then the control plane.
    for proc in reversed(procs):
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + STOP_GRACE_S
    for proc in reversed(procs):
        try:
            proc.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    print("Lockgate stopped.", flush=True)
    return 1 if failed else 0
