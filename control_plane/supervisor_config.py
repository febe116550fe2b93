"""Builds the supervisor's `SupervisorConfig` from the settings of `lockgate control-plane`."""

from __future__ import annotations

import sys
from collections.abc import Mapping

from control_plane.supervisor import SupervisorConfig
from lockgate import settings

# Variables of the control plane only: a node does not read them, and the secrets among them
# (database password, admin token and password) stay out of the nodes' environment.
_CONTROL_PLANE_ONLY = (
    "LOCKGATE_LOCAL_DATA_PLANES",
    "LOCKGATE_DATABASE_URL",
    "LOCKGATE_ADMIN_TOKEN",
    "LOCKGATE_ADMIN_PASSWORD",
)


def build(
    env: Mapping[str, str], cp: settings.ControlPlaneSettings, count: int
) -> SupervisorConfig:
    """Supervise `count` local nodes. Each node gets `env` (the control plane's own environment,
    so LOCKGATE_PROXY_LISTEN, LOCKGATE_REDIS_URL, LOCKGATE_DP_* reach it), the control plane's
    data dir and, unless LOCKGATE_CONTROL_PLANE names another, this control plane's cluster
    address. The data-plane settings are checked here, so a bad value stops the control plane
    at start instead of failing every node over and over.

    Raises settings.SettingsError for a bad data-plane setting.
    """
    dp = settings.data_plane(env)
    node_env = {k: v for k, v in env.items() if k not in _CONTROL_PLANE_ONLY}
    node_env["LOCKGATE_DATA_DIR"] = str(cp.data_dir)
    node_env["LOCKGATE_CONTROL_PLANE"] = env.get(
        "LOCKGATE_CONTROL_PLANE", ""
    ).strip() or _cluster_address(cp.cluster_listen)
    return SupervisorConfig(
        command=(sys.executable, "-m", "lockgate", "data-plane"),
        env=node_env,
        data_dir=cp.data_dir,
        status_host=dp.status_listen.host,
        status_base_port=dp.status_listen.port,
        initial=count,
    )


def _cluster_address(listen: settings.Listen) -> str:
    host = "127.0.0.1" if listen.host in ("0.0.0.0", "::", "") else listen.host
    return f"{host}:{listen.port}"
