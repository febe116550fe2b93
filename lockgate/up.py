"""`lockgate up`: a control plane on this machine that runs N local data planes itself.

The control plane supervises the data planes (LOCKGATE_LOCAL_DATA_PLANES, see
control_plane/supervisor.py): they share the proxy port, restart after a crash and scale with
`lockgate scale N` or `PUT /clustering/local-nodes`. This command only starts the control plane,
waits for it and the first data plane, prints the URLs and stops the control plane (which drains
its data planes first) on Ctrl-C or SIGTERM.

State lives in LOCKGATE_DATA_DIR (default ./.lockgate): the SQLite database, the cluster
certificate pair and the data planes' node ids and snapshot caches.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from types import FrameType

from lockgate import certs, settings

# The control plane drains its data planes (up to ~10 s of in-flight requests) before it exits.
STOP_GRACE_S = 40.0
START_TIMEOUT_S = 60.0


def _host(listen: settings.Listen) -> str:
    return "127.0.0.1" if listen.host in ("0.0.0.0", "::", "") else listen.host


def _wait_port(listen: settings.Listen, go_on: Callable[[], bool], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not go_on():
            return False
        try:
            with socket.create_connection((_host(listen), listen.port), timeout=0.5):
                return True
        except OSError:
            time.sleep(0.1)
    return False


def _wait_ready(listen: settings.Listen, go_on: Callable[[], bool], timeout_s: float) -> bool:
    """Until the first data plane's `/status/ready` answers 200 (it has a config)."""
    url = f"http://{_host(listen)}:{listen.port}/status/ready"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not go_on():
            return False
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return True
        except (OSError, urllib.error.URLError):
            pass
        time.sleep(0.2)
    return False


def run_up(env: Mapping[str, str], data_planes: int) -> int:
    """Run until Ctrl-C/SIGTERM; returns the exit code (1 when the control plane failed)."""
    cp = settings.control_plane(env)
    dp = settings.data_plane(env)  # checked here: a bad value fails now, not in every node
    cp.data_dir.mkdir(parents=True, exist_ok=True)
    if certs.ensure(cp.tls.cert, cp.tls.key):
        print(f"generated the cluster certificate {cp.tls.cert}", flush=True)
    cp_env = dict(env)
    cp_env["LOCKGATE_DATA_DIR"] = str(cp.data_dir)
    cp_env["LOCKGATE_LOCAL_DATA_PLANES"] = str(data_planes)

    stopping = False

    def stop(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)

    control = subprocess.Popen([sys.executable, "-m", "lockgate", "control-plane"], env=cp_env)

    def go_on() -> bool:
        return not stopping and control.poll() is None

    if not _wait_port(cp.admin_listen, go_on, START_TIMEOUT_S):
        if stopping:
            return _shutdown(control, failed=False)
        print("error: the control plane did not start (see its log above)", file=sys.stderr)
        return _shutdown(control, failed=True)
    if not _wait_ready(dp.status_listen, go_on, START_TIMEOUT_S):
        if stopping:
            return _shutdown(control, failed=False)
        if control.poll() is not None:
            print("error: the control plane exited (see its log above)", file=sys.stderr)
            return _shutdown(control, failed=True)
        print("warning: the first data plane is not ready yet (see the log above)", flush=True)
    last_status = dp.status_listen.port + data_planes - 1
    print(
        "\nLockgate is up:\n"
        f"  Proxy      {dp.proxy_listen.url()}   (KONNECT_PROXY_URL)\n"
        f"  Admin API  {cp.admin_listen.url()}\n"
        f"  Web UI     {cp.ui_listen.url()}\n"
        f"  Data planes: {data_planes} (status ports {dp.status_listen.port}-{last_status}; "
        "scale with `lockgate scale N`)\n"
        f"  Data dir   {cp.data_dir}\n"
        "Press Ctrl-C to stop.\n",
        flush=True,
    )
    while not stopping:
        if control.poll() is not None:
            print(
                f"error: the control plane exited with code {control.returncode}", file=sys.stderr
            )
            return _shutdown(control, failed=True)
        time.sleep(0.2)
    return _shutdown(control, failed=False)


def _shutdown(control: subprocess.Popen[bytes], *, failed: bool) -> int:
    if control.poll() is None:
        control.send_signal(signal.SIGTERM)
    try:
        control.wait(timeout=STOP_GRACE_S)
    except subprocess.TimeoutExpired:
        control.kill()
        control.wait()
    print("Lockgate stopped.", flush=True)
    return 1 if failed else 0
