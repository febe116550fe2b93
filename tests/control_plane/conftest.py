"""Fixtures: a store on a temp SQLite file and an Admin API client over it."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar

import lupa
import pytest
from fastapi.testclient import TestClient
from pydantic import AfterValidator

from control_plane.admin.app import create_admin_app
from control_plane.store import ChangeEvent, Store, open_store
from gateway.plugins import registry
from gateway.plugins.base import BuildContext, Handler, Plugin, PluginConfig

TOKEN = "test-admin-token"


def _compiles(chunk: str) -> str:
    err = lupa.LuaRuntime().eval("function(s) local _, e = load(s); return e end")(chunk)
    if err is not None:
        raise ValueError(f"error parsing pre-function: {err}")
    return chunk


class _StandInPreFunctionConfig(PluginConfig):
    access: list[Annotated[str, AfterValidator(_compiles)]] = []


class _StandInPreFunction(Plugin[_StandInPreFunctionConfig]):
    """Used only until gateway/plugins/pre_function.py exists."""

    name: ClassVar[str] = "pre-function"
    priority: ClassVar[int] = 1000000
    config_model: ClassVar[type[PluginConfig]] = _StandInPreFunctionConfig
    allows_consumer_scope: ClassVar[bool] = False

    def build(self, config: _StandInPreFunctionConfig, deps: BuildContext) -> Handler:
        return Handler()


def _available_plugins() -> Mapping[str, Plugin[Any]]:
    try:
        return registry()
    except ImportError:
        from gateway.plugins import key_auth

        found: dict[str, Plugin[Any]] = {"key-auth": key_auth.PLUGIN}
        found["pre-function"] = _StandInPreFunction()
        return found


@pytest.fixture
def plugins() -> Mapping[str, Plugin[Any]]:
    return _available_plugins()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'lockgate.db'}")
    yield opened
    opened.close()


@pytest.fixture
def events() -> list[ChangeEvent]:
    return []


@pytest.fixture
def client(
    store: Store, events: list[ChangeEvent], plugins: Mapping[str, Plugin[Any]]
) -> Iterator[TestClient]:
    app = create_admin_app(store, TOKEN, events.append, plugins)
    with TestClient(app, headers={"Kong-Admin-Token": TOKEN}) as test_client:
        yield test_client
