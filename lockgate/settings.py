"""Settings of every `lockgate` role, read once at start from flags and LOCKGATE_* variables.

Only this module and the CLI entry read the environment; everything else gets values passed down.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True, slots=True)
class Listen:
    host: str
    port: int

    @staticmethod
    def parse(value: str, name: str) -> Listen:
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or not 0 < int(port) < 65536:
            raise SettingsError(f"{name}: expected host:port, got {value!r}")
        return Listen(host or "0.0.0.0", int(port))

    def url(self, scheme: str = "http") -> str:
        host = "localhost" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"{scheme}://{host}:{self.port}"


class SettingsError(Exception):
    """A setting has a bad value; the message names it."""


@dataclass(frozen=True, slots=True)
class ClusterTLS:
    cert: Path
    key: Path


@dataclass(frozen=True, slots=True)
class ControlPlaneSettings:
    data_dir: Path
    database_url: str
    admin_listen: Listen
    ui_listen: Listen
    cluster_listen: Listen
    admin_token: str | None
    tls: ClusterTLS
    redis_url: str | None = None
    """LOCKGATE_REDIS_URL: the credential cache shared with the data planes (None: no Redis)."""
    revision_poll_s: float = 0.3
    """LOCKGATE_CP_REVISION_POLL_S: how often writes of other control planes are looked for."""
    analytics_retention_days: float = 30.0
    """LOCKGATE_ANALYTICS_RETENTION_DAYS: analytics minutes older than this are deleted."""
    proxy_url: str = "http://localhost:8000"
    """LOCKGATE_PROXY_URL: the proxy URL users point SDKs at (shown in the UI)."""
    admin_password: str | None = None
    """LOCKGATE_ADMIN_PASSWORD: the first web UI admin's password (else generated, shown once)."""
    local_data_planes: int = 0
    """LOCKGATE_LOCAL_DATA_PLANES: data planes this control plane runs itself (0: none)."""
    allow_link_local_upstreams: bool = False
    """LOCKGATE_ALLOW_LINK_LOCAL_UPSTREAMS: accept LLM targets on link-local addresses
    (169.254.0.0/16, fe80::/10: cloud metadata services). Off by default."""


@dataclass(frozen=True, slots=True)
class DataPlaneSettings:
    data_dir: Path
    control_plane: str
    proxy_listen: Listen
    status_listen: Listen
    tls: ClusterTLS
    node_id: str
    hostname: str
    labels: Mapping[str, str]
    redis_url: str | None = None
    """LOCKGATE_REDIS_URL: L2 of the key-auth lookup chain (None: no Redis)."""
    redis_timeout_s: float = 0.1
    """LOCKGATE_REDIS_TIMEOUT: seconds a Redis lookup may take before the control plane is asked."""
    snapshot_cache: Path | None = None
    """LOCKGATE_DP_SNAPSHOT_CACHE: file keeping the last applied snapshot (None: off)."""
    heartbeat_s: float = 5.0
    """LOCKGATE_DP_HEARTBEAT_S: heartbeat interval; the CP marks a node disconnected after 3.
    The node pings the CP as often and gives it up when a ping is unanswered for 2 intervals."""
    analytics_flush_s: float = 10.0
    """LOCKGATE_DP_ANALYTICS_FLUSH_S: how often counted requests are reported to the CP."""
    drain_s: float = 1.0
    """LOCKGATE_DP_DRAIN_S: on SIGTERM, after the proxy listener closes, how long open
    connections keep being served with `Connection: close` before the graceful shutdown
    (0: none); requests in flight then get 10 s more."""
    allow_link_local_upstreams: bool = False
    """LOCKGATE_ALLOW_LINK_LOCAL_UPSTREAMS: as on the control plane; a data plane without it
    refuses (NACKs) a config with a link-local LLM target."""
    vault_env: Mapping[str, str] = field(default_factory=dict, repr=False)
    """The whole environment at start: what `{vault://env/...}` references in plugin configs
    resolve to (gateway/vault.py). Never printed."""


def _get(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip()
    return value or default


def _seconds(env: Mapping[str, str], name: str, default: str) -> float:
    value = _get(env, name, default)
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise SettingsError(f"{name}: expected a positive number of seconds, got {value!r}")
    return seconds


def _drain_seconds(env: Mapping[str, str], name: str, default: str) -> float:
    value = _get(env, name, default)
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds <= 60:
        raise SettingsError(f"{name}: expected seconds from 0 to 60, got {value!r}")
    return seconds


def _count(env: Mapping[str, str], name: str, low: int, high: int) -> int:
    value = _get(env, name, str(low))
    if not value.isdigit() or not low <= int(value) <= high:
        raise SettingsError(f"{name}: expected a whole number from {low} to {high}, got {value!r}")
    return int(value)


def _flag(env: Mapping[str, str], name: str) -> bool:
    value = _get(env, name, "off").lower()
    if value in ("on", "true", "yes", "1"):
        return True
    if value in ("off", "false", "no", "0"):
        return False
    raise SettingsError(f"{name}: expected on or off, got {value!r}")


def _optional_path(env: Mapping[str, str], name: str) -> Path | None:
    value = _get(env, name, "off")
    return None if value.lower() == "off" else Path(value).resolve()


def data_dir(env: Mapping[str, str]) -> Path:
    return Path(_get(env, "LOCKGATE_DATA_DIR", ".lockgate")).resolve()


def cluster_tls(env: Mapping[str, str], base: Path) -> ClusterTLS:
    return ClusterTLS(
        Path(_get(env, "LOCKGATE_CLUSTER_CERT", str(base / "cluster.crt"))),
        Path(_get(env, "LOCKGATE_CLUSTER_CERT_KEY", str(base / "cluster.key"))),
    )


def control_plane(env: Mapping[str, str] | None = None) -> ControlPlaneSettings:
    env = os.environ if env is None else env
    base = data_dir(env)
    return ControlPlaneSettings(
        data_dir=base,
        database_url=_get(env, "LOCKGATE_DATABASE_URL", f"sqlite:///{base / 'lockgate.db'}"),
        admin_listen=Listen.parse(
            _get(env, "LOCKGATE_ADMIN_LISTEN", "0.0.0.0:8001"), "LOCKGATE_ADMIN_LISTEN"
        ),
        ui_listen=Listen.parse(
            _get(env, "LOCKGATE_UI_LISTEN", "0.0.0.0:8002"), "LOCKGATE_UI_LISTEN"
        ),
        cluster_listen=Listen.parse(
            _get(env, "LOCKGATE_CLUSTER_LISTEN", "0.0.0.0:8005"), "LOCKGATE_CLUSTER_LISTEN"
        ),
        admin_token=env.get("LOCKGATE_ADMIN_TOKEN") or None,
        redis_url=env.get("LOCKGATE_REDIS_URL", "").strip() or None,
        revision_poll_s=_seconds(env, "LOCKGATE_CP_REVISION_POLL_S", "0.3"),
        analytics_retention_days=_seconds(env, "LOCKGATE_ANALYTICS_RETENTION_DAYS", "30"),
        proxy_url=_get(
            env,
            "LOCKGATE_PROXY_URL",
            Listen.parse(
                _get(env, "LOCKGATE_PROXY_LISTEN", "0.0.0.0:8000"), "LOCKGATE_PROXY_LISTEN"
            ).url(),
        ),
        admin_password=env.get("LOCKGATE_ADMIN_PASSWORD") or None,
        local_data_planes=_count(env, "LOCKGATE_LOCAL_DATA_PLANES", 0, 64),
        allow_link_local_upstreams=_flag(env, "LOCKGATE_ALLOW_LINK_LOCAL_UPSTREAMS"),
        tls=cluster_tls(env, base),
    )


def data_plane(env: Mapping[str, str] | None = None) -> DataPlaneSettings:
    env = os.environ if env is None else env
    base = data_dir(env)
    labels: dict[str, str] = {}
    for pair in filter(None, _get(env, "LOCKGATE_DP_LABELS", "").split(",")):
        key, sep, value = pair.partition(":")
        if not sep or not key:
            raise SettingsError(f"LOCKGATE_DP_LABELS: expected k:v,k:v, got {pair!r}")
        labels[key.strip()] = value.strip()
    return DataPlaneSettings(
        data_dir=base,
        control_plane=_get(env, "LOCKGATE_CONTROL_PLANE", "localhost:8005"),
        proxy_listen=Listen.parse(
            _get(env, "LOCKGATE_PROXY_LISTEN", "0.0.0.0:8000"), "LOCKGATE_PROXY_LISTEN"
        ),
        status_listen=Listen.parse(
            _get(env, "LOCKGATE_STATUS_LISTEN", "0.0.0.0:8100"), "LOCKGATE_STATUS_LISTEN"
        ),
        tls=cluster_tls(env, base),
        node_id=_get(env, "LOCKGATE_NODE_ID", str(uuid.uuid4())),
        hostname=_get(env, "LOCKGATE_NODE_HOSTNAME", socket.gethostname()),
        labels=labels,
        redis_url=env.get("LOCKGATE_REDIS_URL", "").strip() or None,
        redis_timeout_s=_seconds(env, "LOCKGATE_REDIS_TIMEOUT", "0.1"),
        snapshot_cache=_optional_path(env, "LOCKGATE_DP_SNAPSHOT_CACHE"),
        heartbeat_s=_seconds(env, "LOCKGATE_DP_HEARTBEAT_S", "5"),
        analytics_flush_s=_seconds(env, "LOCKGATE_DP_ANALYTICS_FLUSH_S", "10"),
        drain_s=_drain_seconds(env, "LOCKGATE_DP_DRAIN_S", "1"),
        allow_link_local_upstreams=_flag(env, "LOCKGATE_ALLOW_LINK_LOCAL_UPSTREAMS"),
        vault_env=dict(env),
    )
