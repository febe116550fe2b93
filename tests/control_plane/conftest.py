"""Fixtures: a store on a temp SQLite file and an Admin API client over it; `database_url`, a
fresh database of every backend in turn (a test that takes it runs once per backend). (PostgreSQL
and Redis servers come from tests/services, loaded by tests/conftest.py.)"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from control_plane.store import ChangeEvent, Store, open_store
from gateway.plugins import registry
from gateway.plugins.base import Plugin

TOKEN = "test-admin-token"


@pytest.fixture
def plugins() -> Mapping[str, Plugin[Any]]:
    return registry()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh SQLite file, or a fresh database on the session's PostgreSQL server."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'lockgate.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


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
    from control_plane.admin.app import create_admin_app  # only tests of the Admin API need it

    app = create_admin_app(store, TOKEN, events.append, plugins)
    with TestClient(app, headers={"Kong-Admin-Token": TOKEN}) as test_client:
        yield test_client
