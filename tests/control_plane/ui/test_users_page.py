"""Users and admin tokens page (admin role only)."""

from __future__ import annotations

import re
from typing import Any

from control_plane.admin_tokens import hash_token
from tests.control_plane.ui.conftest import PASSWORD, Browser, Env


def test_create_a_user_who_can_then_log_in(env: Env, admin: Browser, browser_for: Any) -> None:
    response = admin.post("/users", {"username": "carol", "password": PASSWORD, "role": "editor"})
    assert response.status_code == 303
    assert "Created user carol" in admin.get(response.headers["location"]).text
    user = env.users.get("carol")
    assert user is not None and user.role == "editor"
    carol: Browser = browser_for("editor", "carol")
    assert carol.get("/services").status_code == 200


def test_user_form_errors(admin: Browser) -> None:
    admin.post("/users", {"username": "dave", "password": PASSWORD, "role": "viewer"})
    dup = admin.post("/users", {"username": "dave", "password": PASSWORD, "role": "viewer"})
    assert dup.status_code == 409
    assert "&#39;dave&#39; is already in use" in dup.text
    short = admin.post("/users", {"username": "erin", "password": "short", "role": "viewer"})
    assert short.status_code == 400
    assert "password: expected 8 to 1024 characters" in short.text
    role = admin.post("/users", {"username": "erin", "password": PASSWORD, "role": "root"})
    assert role.status_code == 400
    assert "role: expected one of: admin, editor, viewer" in role.text


def test_change_role_and_password(env: Env, admin: Browser, browser_for: Any) -> None:
    frank: Browser = browser_for("viewer", "frank")
    user = env.users.get("frank")
    assert user is not None
    response = admin.post(f"/users/{user.id}", {"role": "editor", "password": "a new password"})
    assert response.status_code == 303
    assert env.users.get("frank").role == "editor"  # type: ignore[union-attr]
    # A new password ends the sessions made with the old one.
    assert frank.get("/", follow_redirects=False).status_code == 303
    assert frank.login("frank", "a new password").status_code == 303


def test_delete_a_user_but_never_yourself(env: Env, admin: Browser) -> None:
    env.users.create("gone", PASSWORD, "viewer")
    gone = env.users.get("gone")
    assert gone is not None
    assert admin.post(f"/users/{gone.id}/delete").status_code == 303
    assert env.users.get("gone") is None
    me = env.users.get("admin-user")
    assert me is not None
    assert admin.post(f"/users/{me.id}/delete").status_code == 403
    assert admin.post(f"/users/{me.id}", {"role": "viewer"}).status_code == 403
    assert env.users.get("admin-user") is not None


def test_admin_token_is_shown_once_and_works(env: Env, admin: Browser) -> None:
    response = admin.post("/tokens", {"name": "ci", "role": "editor", "ttl": "3600"})
    assert response.status_code == 201
    found = re.search(r'<pre id="new-token"><code>(lgadm_[^<]+)</code>', response.text)
    assert found is not None
    token = env.store.find_admin_token(hash_token(found.group(1)))
    assert token is not None and (token.name, token.role) == ("ci", "editor")
    assert found.group(1) not in admin.get("/users").text
    dup = admin.post("/tokens", {"name": "ci", "role": "viewer"})
    assert dup.status_code == 409
    bad = admin.post("/tokens", {"name": "bad name!", "role": "viewer"})
    assert bad.status_code == 400
    assert admin.post(f"/tokens/{token.id}/revoke").status_code == 303
    assert env.store.find_admin_token(hash_token(found.group(1))) is None
    entries, _ = env.store.list_audit(entity="admin_tokens")
    assert {(e.actor, e.action) for e in entries} == {
        ("ui:admin-user", "create"),
        ("ui:admin-user", "delete"),
    }
