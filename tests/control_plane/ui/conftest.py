"""Fixtures for in-process UI tests: a store and user store on one temp SQLite engine, the UI
app over them, a fake clock for sessions and throttling, and logged-in clients per role."""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.testclient import TestClient

from control_plane.nodes import NodeRegistry
from control_plane.publisher import Publisher
from control_plane.store import ChangeEvent, Store
from control_plane.store.sql import SqlStore, create_store_engine
from control_plane.store.users import UserStore
from control_plane.ui import UiConfig, create_ui_app
from control_plane.ui.extensions import AnalyticsQuery, AnalyticsSource, LocalNodes

PASSWORD = "correct horse battery"
CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class Clock:
    now: float = 1_900_000_000.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Env:
    store: Store
    users: UserStore
    nodes: NodeRegistry
    clock: Clock
    events: list[ChangeEvent]
    config: UiConfig
    analytics: FakeAnalytics | None = None
    local: FakeLocalNodes | None = None
    apps: list[FastAPI] = field(default_factory=list)

    def app(self) -> FastAPI:
        app = create_ui_app(
            self.store,
            self.users,
            self.nodes,
            Publisher(self.store.snapshot),
            self.events.append,
            config=self.config,
            analytics=self.analytics,
            local_nodes=self.local,
            clock=self.clock,
        )
        self.apps.append(app)
        return app


class FakeAnalytics:
    """Answers every query from canned rows, recording the queries."""

    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.rows = rows
        self.queries: list[AnalyticsQuery] = []

    async def __call__(self, query: AnalyticsQuery) -> dict[str, Any]:
        self.queries.append(query)
        rows = []
        for row in self.rows:
            group = {k: row["group"].get(k) for k in query.group_by}
            rows.append({**row, "group": group})
        return {"data": rows, "start": query.start, "end": query.end, "interval": query.interval}


class FakeLocalNodes:
    def __init__(self, desired: int = 1) -> None:
        self.desired = desired
        self.scaled: list[int] = []

    def _body(self) -> dict[str, Any]:
        data = [
            {
                "index": i,
                "node_id": f"node-{i}",
                "pid": 1000 + i,
                "state": "running",
                "restarts": 0,
                "status_port": 8100 + i,
                "started_at": 1_900_000_000,
            }
            for i in range(1, self.desired + 1)
        ]
        return {"desired": self.desired, "data": data}

    async def status(self) -> dict[str, Any] | None:
        return self._body()

    async def scale(self, desired: int) -> dict[str, Any]:
        if desired == 13:
            raise ValueError("13 nodes is unlucky")
        self.desired = desired
        self.scaled.append(desired)
        return self._body()


_: tuple[type[AnalyticsSource], type[LocalNodes]] | None = None


@pytest.fixture(scope="session")
def migrated_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database file at the newest schema, copied by each test (migrating takes ~0.3 s)."""
    path = tmp_path_factory.mktemp("ui-template") / "lockgate.db"
    engine = create_store_engine(f"sqlite:///{path}")
    SqlStore(engine).migrate()
    engine.dispose()  # the last connection checkpoints the WAL into the file
    return path


@pytest.fixture
def env(tmp_path: Path, migrated_db: Path) -> Iterator[Env]:
    shutil.copyfile(migrated_db, tmp_path / "lockgate.db")
    engine = create_store_engine(f"sqlite:///{tmp_path / 'lockgate.db'}")
    store = SqlStore(engine)
    store.migrate()  # a no-op at head; kept so the test fails loudly if the copy is stale
    clock = Clock()
    users = UserStore(engine, PasswordHasher(time_cost=1, memory_cost=8, parallelism=1), clock)
    cert = tmp_path / "cluster.crt"
    cert.write_text("-----BEGIN CERTIFICATE-----\nMIIB-test\n-----END CERTIFICATE-----\n")
    config = UiConfig(
        proxy_url="http://proxy.example:8000",
        cluster_address="cp.example:8005",
        cluster_cert=cert,
        cluster_key=tmp_path / "cluster.key",
        session_ttl_s=3600,
        session_idle_s=600,
    )
    yield Env(store, users, NodeRegistry(), clock, [], config)
    store.close()


def csrf_of(html: str) -> str:
    found = CSRF.search(html)
    assert found is not None, "no CSRF token in the page"
    return found.group(1)


class Browser:
    """A TestClient that logs in and submits forms with the page's CSRF token."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.csrf = ""

    def login(self, username: str, password: str = PASSWORD) -> Any:
        page = self.client.get("/login")
        response = self.client.post(
            "/login",
            data={"csrf_token": csrf_of(page.text), "username": username, "password": password},
            follow_redirects=False,
        )
        if response.status_code == 303:
            self.csrf = csrf_of(self.client.get("/").text)
        return response

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, **kwargs)

    def post(self, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
        body = {"csrf_token": self.csrf, **(data or {})}
        kwargs.setdefault("follow_redirects", False)
        return self.client.post(path, data=body, **kwargs)


@pytest.fixture
def browser_for(env: Env) -> Iterator[Any]:
    clients: list[TestClient] = []

    def make(
        role: str = "admin", username: str | None = None, *, app: FastAPI | None = None
    ) -> Browser:
        name = username or f"{role}-user"
        if env.users.get(name) is None:
            env.users.create(name, PASSWORD, role)
        client = TestClient(app or env.app())
        clients.append(client)
        browser = Browser(client)
        assert browser.login(name).status_code == 303
        return browser

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def admin(browser_for: Any) -> Browser:
    result: Browser = browser_for("admin")
    return result
