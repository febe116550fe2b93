"""Every Admin API and UI route refuses a caller without credentials.

The routes are read from the apps themselves (`app.routes`), so a route added later is walked
too; only the public ones listed in `UI_PUBLIC` may answer an anonymous caller.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import Mount

from control_plane.admin.app import create_admin_app
from control_plane.analytics_api import add_analytics_routes
from control_plane.clustering_api import add_clustering_routes
from control_plane.metrics import ControlPlaneMetrics, add_metrics_route
from control_plane.nodes import NodeRegistry
from control_plane.publisher import Publisher
from control_plane.store.sql import SqlStore, create_store_engine
from control_plane.store.sql_analytics import SqlAnalytics
from control_plane.store.users import UserStore
from control_plane.ui import UiConfig, create_ui_app

# (method, path) pairs the UI serves without a login, and why.
UI_PUBLIC = {
    ("GET", "/login"),  # the login form itself
    ("POST", "/login"),  # submitting it (guarded by its own CSRF cookie, tested below)
    ("GET", "/metrics"),  # Prometheus scrape endpoint on the UI port (control_plane/main.py)
}
UI_PUBLIC_MOUNTS = {"/static"}  # vendored JS/CSS, no data
_PARAM = re.compile(r"\{([^}:]+)(?::[^}]+)?\}")


def _concrete(path: str) -> str:
    # Any value will do: the check must refuse before the entity is looked up.
    return _PARAM.sub(lambda m: f"anon-{m.group(1)}", path)


def _endpoints(app: FastAPI) -> list[tuple[str, str]]:
    found: list[tuple[str, str]] = []
    for route in app.routes:
        if isinstance(route, APIRoute):
            found += [
                (method, route.path) for method in sorted(route.methods or ()) if method != "HEAD"
            ]
    return found


@pytest.fixture
def engine_url(tmp_path: Path) -> Iterator[str]:
    yield f"sqlite:///{tmp_path / 'lockgate.db'}"


@pytest.fixture
def admin_app(engine_url: str) -> Iterator[FastAPI]:
    engine = create_store_engine(engine_url)
    store = SqlStore(engine)
    store.migrate()
    nodes = NodeRegistry()
    app = create_admin_app(store, "bootstrap-token", lambda e: None)
    # The extra routes control_plane/main.py mounts on the same app.
    add_clustering_routes(app, nodes, Publisher(store.snapshot))
    add_analytics_routes(app, SqlAnalytics(engine))
    yield app
    store.close()


@pytest.fixture
def ui_app(engine_url: str, tmp_path: Path) -> Iterator[FastAPI]:
    engine = create_store_engine(engine_url)
    store = SqlStore(engine)
    store.migrate()
    users = UserStore(engine, PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    users.create("admin", "correct horse battery", "admin")
    nodes = NodeRegistry()
    publisher = Publisher(store.snapshot)
    config = UiConfig(cluster_cert=tmp_path / "cluster.crt", cluster_key=tmp_path / "cluster.key")
    app = create_ui_app(store, users, nodes, publisher, lambda e: None, config=config)
    add_metrics_route(app, ControlPlaneMetrics(nodes, publisher))
    yield app
    store.close()


def test_every_admin_route_answers_401_to_an_anonymous_caller(admin_app: FastAPI) -> None:
    endpoints = _endpoints(admin_app)
    assert len(endpoints) > 50, "the walk found too few routes: the app layout changed"
    allowed: list[tuple[str, str, int]] = []
    with TestClient(admin_app) as client:
        for method, path in endpoints:
            response = client.request(method, _concrete(path), json={})
            if response.status_code != 401:
                allowed.append((method, path, response.status_code))
    assert allowed == []


def test_every_admin_route_refuses_a_wrong_token(admin_app: FastAPI) -> None:
    headers = {"Kong-Admin-Token": "not-the-token", "Authorization": "Bearer not-the-token"}
    with TestClient(admin_app) as client:
        statuses = {
            (method, path): client.request(
                method, _concrete(path), json={}, headers=headers
            ).status_code
            for method, path in _endpoints(admin_app)
        }
    assert {key: s for key, s in statuses.items() if s != 401} == {}


def test_every_ui_route_sends_an_anonymous_caller_to_login(ui_app: FastAPI) -> None:
    endpoints = _endpoints(ui_app)
    assert len(endpoints) > 20, "the walk found too few routes: the app layout changed"
    mounts = {r.path for r in ui_app.routes if isinstance(r, Mount)}
    assert mounts == UI_PUBLIC_MOUNTS, "a new mount must be checked and listed here"
    assert set(endpoints) >= UI_PUBLIC, "a documented public route is gone: update the list"
    allowed: list[tuple[str, str, int, str]] = []
    with TestClient(ui_app) as client:
        for method, path in endpoints:
            if (method, path) in UI_PUBLIC:
                continue
            response = client.request(
                method, _concrete(path), data={"csrf_token": "x"}, follow_redirects=False
            )
            location = response.headers.get("location", "")
            to_login = response.status_code in (302, 303) and location.startswith("/login")
            if not to_login and response.status_code not in (401, 403):
                allowed.append((method, path, response.status_code, location))
    assert allowed == []


def test_ui_public_routes_show_no_data(ui_app: FastAPI) -> None:
    with TestClient(ui_app) as client:
        login = client.get("/login")
        assert login.status_code == 200
        assert "csrf" in login.text
        assert client.get("/metrics").status_code == 200
        assert client.get("/static/does-not-exist.js").status_code == 404
        # The login POST without its CSRF cookie is refused before any password check.
        forged = client.post(
            "/login",
            data={"csrf_token": "forged", "username": "admin", "password": "correct horse battery"},
            follow_redirects=False,
        )
        assert forged.status_code == 403
        assert "lockgate_session" not in forged.cookies


def test_a_planted_session_cookie_is_not_adopted_at_login(ui_app: FastAPI) -> None:
    # Session fixation: an attacker who plants a cookie value must not share the session the
    # victim then logs in to.
    planted = "attacker-chosen-session-value"
    with TestClient(ui_app) as victim, TestClient(ui_app) as attacker:
        victim.cookies.set("lockgate_session", planted)
        page = victim.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token is not None
        login = victim.post(
            "/login",
            data={
                "csrf_token": token.group(1),
                "username": "admin",
                "password": "correct horse battery",
            },
            follow_redirects=False,
        )
        assert login.status_code == 303
        issued = login.cookies.get("lockgate_session")
        assert issued and issued != planted
        assert victim.get("/", follow_redirects=False).status_code == 200
        attacker.cookies.set("lockgate_session", planted)
        assert attacker.get("/", follow_redirects=False).status_code == 303
