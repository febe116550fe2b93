"""Resident memory of one data plane: idle with the benchmark config, and with 10k routes."""

from __future__ import annotations

import time
from pathlib import Path

from proxybench import lockgate, procs


def data_plane_rss(
    work: Path,
    log_dir: Path,
    upstream_port: int,
    stream_port: int,
    extra_routes: int,
    control_plane_env: dict[str, str] | None = None,
) -> dict[str, float]:
    """Start a control plane and one data plane, load the config with `extra_routes` more
    services/routes, and read the data plane's VmRSS once it runs that config (after a pause
    so start-up garbage is collected)."""
    gate = lockgate.Lockgate(
        f"mem-{extra_routes}",
        work,
        log_dir,
        data_planes=1,
        cores=procs.SERVER_CORE,
        control_plane_env=control_plane_env,
    )
    try:
        started = time.monotonic()
        gate.start(lockgate.config(upstream_port, stream_port, extra_routes=extra_routes))
        synced_s = time.monotonic() - started
        time.sleep(3)
        [pid] = gate.data_plane_pids()
        return {
            "routes": 4 + extra_routes,
            "rss_mb": round(procs.rss_mb(pid), 1),
            "start_and_sync_s": round(synced_s, 1),
        }
    finally:
        gate.stop()
