"""`supervisor_config.build`: what the local data planes of `lockgate control-plane` get."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from control_plane.supervisor_config import build
from lockgate import settings


def _env(tmp_path: Path, **extra: str) -> dict[str, str]:
    return {
        "PATH": "/usr/bin",
        "LOCKGATE_DATA_DIR": str(tmp_path / "data"),
        "LOCKGATE_CLUSTER_LISTEN": "0.0.0.0:9005",
        "LOCKGATE_STATUS_LISTEN": "127.0.0.1:9100",
        "LOCKGATE_PROXY_LISTEN": "0.0.0.0:9000",
        "LOCKGATE_REDIS_URL": "redis://cache:6379/0",
        "LOCKGATE_LOCAL_DATA_PLANES": "3",
        "LOCKGATE_DATABASE_URL": "postgresql://lockgate:secret@db/lockgate",
        "LOCKGATE_ADMIN_TOKEN": "admin-secret",
        **extra,
    }


def test_nodes_get_the_data_plane_settings_but_no_control_plane_secrets(tmp_path: Path) -> None:
    env = _env(tmp_path)
    config = build(env, settings.control_plane(env), 3)
    assert config.initial == 3
    assert config.command == (sys.executable, "-m", "lockgate", "data-plane")
    assert (config.status_host, config.status_base_port) == ("127.0.0.1", 9100)
    assert config.data_dir == (tmp_path / "data").resolve()
    node_env = dict(config.env)
    assert node_env["LOCKGATE_CONTROL_PLANE"] == "127.0.0.1:9005"  # this control plane
    assert node_env["LOCKGATE_DATA_DIR"] == str(config.data_dir)
    assert node_env["LOCKGATE_PROXY_LISTEN"] == "0.0.0.0:9000"
    assert node_env["LOCKGATE_REDIS_URL"] == "redis://cache:6379/0"
    assert node_env["PATH"] == "/usr/bin"
    for secret in ("LOCKGATE_DATABASE_URL", "LOCKGATE_ADMIN_TOKEN", "LOCKGATE_LOCAL_DATA_PLANES"):
        assert secret not in node_env
    dp = settings.data_plane(node_env)
    assert dp.proxy_listen == settings.Listen("0.0.0.0", 9000)
    assert dp.tls == settings.control_plane(env).tls  # the same cluster certificate


def test_an_explicit_control_plane_address_is_kept(tmp_path: Path) -> None:
    env = _env(tmp_path, LOCKGATE_CONTROL_PLANE="cp-a:8005,cp-b:8005")
    config = build(env, settings.control_plane(env), 1)
    assert config.env["LOCKGATE_CONTROL_PLANE"] == "cp-a:8005,cp-b:8005"


def test_a_bad_data_plane_setting_fails_at_start(tmp_path: Path) -> None:
    env = _env(tmp_path, LOCKGATE_STATUS_LISTEN="nope")
    with pytest.raises(settings.SettingsError, match="LOCKGATE_STATUS_LISTEN"):
        build(env, settings.control_plane(env), 1)
