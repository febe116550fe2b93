"""Roles as in the Admin API (viewer reads, editor writes config, admin everything) and the
CSRF token every form must carry."""

from __future__ import annotations

import re
from typing import Any

from control_plane.admin.kinds import PLUGINS, SERVICES
from tests.control_plane.ui.conftest import Browser, Env


def _services(env: Env) -> list[str]:
    return [str(s.model_dump()["name"]) for s in env.store.read(lambda r: r.all(SERVICES.model))]


def test_a_viewer_cannot_write(env: Env, browser_for: Any) -> None:
    viewer: Browser = browser_for("viewer")
    page = viewer.get("/services")
    assert page.status_code == 200
    assert "New gateway service" not in page.text
    response = viewer.post("/services", {"name": "nope", "url": "http://upstream"})
    assert response.status_code == 403
    assert "Your role (viewer) cannot do this." in response.text
    assert _services(env) == []
    assert env.events == []


def test_a_viewer_cannot_reach_admin_pages(browser_for: Any) -> None:
    viewer: Browser = browser_for("viewer")
    nav = viewer.get("/").text
    assert 'href="/users"' not in nav
    assert 'href="/audit"' not in nav
    assert viewer.get("/users").status_code == 403
    assert viewer.get("/audit").status_code == 403


def test_an_editor_writes_config_but_not_users_or_tokens(env: Env, browser_for: Any) -> None:
    editor: Browser = browser_for("editor")
    assert editor.post("/services", {"name": "svc", "url": "http://up"}).status_code == 303
    assert _services(env) == ["svc"]
    assert editor.get("/users").status_code == 403
    assert (
        editor.post("/users", {"username": "x", "password": "p" * 10, "role": "admin"}).status_code
        == 403
    )
    assert editor.post("/tokens", {"name": "t", "role": "admin"}).status_code == 403
    assert env.users.get("x") is None
    assert env.store.list_admin_tokens() == []


def test_a_form_without_the_csrf_token_is_refused(env: Env, admin: Browser) -> None:
    response = admin.client.post(
        "/services", data={"name": "forged", "url": "http://x"}, follow_redirects=False
    )
    assert response.status_code == 403
    assert "CSRF token is missing or invalid" in response.text
    wrong = admin.client.post(
        "/services",
        data={"name": "forged", "url": "http://x", "csrf_token": "guess"},
        follow_redirects=False,
    )
    assert wrong.status_code == 403
    assert _services(env) == []


def test_the_csrf_token_may_come_in_the_htmx_header(env: Env, admin: Browser) -> None:
    response = admin.client.post(
        "/services",
        data={"name": "via-header", "url": "http://x"},
        headers={"X-CSRF-Token": admin.csrf},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert _services(env) == ["via-header"]


def test_writes_are_audited_as_the_ui_user(env: Env, admin: Browser) -> None:
    admin.post("/services", {"name": "audited", "url": "http://x"})
    entries, _ = env.store.list_audit(entity="services")
    assert [(e.actor, e.action, e.entity_name) for e in entries] == [
        ("ui:admin-user", "create", "audited")
    ]
    page = admin.get("/audit?entity=services").text
    assert "ui:admin-user" in page
    assert "audited" in page


def test_every_form_on_every_page_carries_the_session_token(env: Env, admin: Browser) -> None:
    admin.post("/services", {"name": "svc", "url": "http://up"})
    admin.post("/routes", {"name": "r", "paths": "/x"})
    admin.post("/consumers", {"username": "c"})
    admin.post("/plugins/new/key-auth", {"enabled": "true"})
    plugin_id = env.store.read(lambda r: r.all(PLUGINS.model))[0].id
    pages = [
        "/", "/services", "/services/svc", "/routes", "/routes/r", "/consumers",
        "/consumers/c", "/plugins", "/plugins/new/pre-function", f"/plugins/{plugin_id}",
        "/nodes", "/users",
    ]  # fmt: skip
    for path in pages:
        html = admin.get(path).text
        posts = re.findall(r'<form method="post".*?</form>', html, re.S)
        assert posts, path
        for form in posts:
            assert f'name="csrf_token" value="{admin.csrf}"' in form, (path, form[:200])
