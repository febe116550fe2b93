"""Logging in and out: cookie flags, CSRF on the login form, throttling, session expiry."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

from tests.control_plane.ui.conftest import PASSWORD, Browser, Env, csrf_of


def _login(client: TestClient, username: str, password: str, **extra: str) -> Any:
    page = client.get("/login")
    data = {"csrf_token": csrf_of(page.text), "username": username, "password": password}
    return client.post("/login", data={**data, **extra}, follow_redirects=False)


def test_pages_need_a_login_and_come_back_after_it(env: Env) -> None:
    env.users.create("alice", PASSWORD, "admin")
    with TestClient(env.app()) as client:
        response = client.get("/services?offset=x", follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"] == "/login?next=%2Fservices%3Foffset%3Dx"
        login = client.get(response.headers["location"])
        assert 'name="next" value="/services?offset=x"' in login.text
        done = _login(client, "alice", PASSWORD, next="/services")
        assert done.status_code == 303
        assert done.headers["location"] == "/services"
        assert client.get("/services").status_code == 200


def test_session_cookie_is_httponly_lax_and_secure_only_on_https(env: Env) -> None:
    env.users.create("alice", PASSWORD, "admin")
    with TestClient(env.app()) as client:
        cookie = _login(client, "alice", PASSWORD).headers["set-cookie"]
    assert cookie.startswith("lockgate_session=")
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "Secure" not in cookie
    with TestClient(env.app(), base_url="https://ui.example") as client:
        cookie = _login(client, "alice", PASSWORD).headers["set-cookie"]
    assert "Secure" in cookie


def test_wrong_password_and_unknown_user_get_the_same_answer(env: Env) -> None:
    env.users.create("alice", PASSWORD, "admin")
    with TestClient(env.app()) as client:
        wrong = _login(client, "alice", "not the password")
        unknown = _login(client, "bob", PASSWORD)
    for response in (wrong, unknown):
        assert response.status_code == 401
        assert "Invalid username or password." in response.text
        assert "lockgate_session" not in response.headers.get("set-cookie", "")


def test_next_never_leaves_the_site(env: Env) -> None:
    env.users.create("alice", PASSWORD, "admin")
    with TestClient(env.app()) as client:
        response = _login(client, "alice", PASSWORD, next="//evil.example/x")
    assert response.headers["location"] == "/"


def test_login_without_the_form_token_is_refused(env: Env) -> None:
    env.users.create("alice", PASSWORD, "admin")
    with TestClient(env.app()) as client:
        client.get("/login")
        response = client.post(
            "/login", data={"username": "alice", "password": PASSWORD}, follow_redirects=False
        )
    assert response.status_code == 403
    assert "login form expired" in response.text


def test_failed_logins_are_throttled_per_username(env: Env) -> None:
    env.users.create("alice", PASSWORD, "admin")
    with TestClient(env.app()) as client:
        for _ in range(5):
            assert _login(client, "alice", "bad password").status_code == 401
        locked = _login(client, "alice", PASSWORD)  # even the right password waits
        assert locked.status_code == 429
        assert "Too many failed logins" in locked.text
        assert 0 < int(locked.headers["retry-after"]) <= 300
        env.clock.now += 301
        assert _login(client, "alice", PASSWORD).status_code == 303


def test_logout_ends_the_session_server_side(browser_for: Any) -> None:
    browser: Browser = browser_for("viewer")
    cookie = browser.client.cookies.get("lockgate_session")
    assert cookie
    assert browser.post("/logout").headers["location"] == "/login"
    replay = TestClient(browser.client.app, cookies={"lockgate_session": cookie})
    response = replay.get("/", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login")


def test_logout_needs_the_csrf_token(browser_for: Any) -> None:
    browser: Browser = browser_for("viewer")
    response = browser.client.post("/logout", follow_redirects=False)
    assert response.status_code == 403
    assert browser.get("/").status_code == 200


def test_an_expired_session_sends_you_to_log_in_again(env: Env, browser_for: Any) -> None:
    browser: Browser = browser_for("editor")
    env.clock.now += env.config.session_ttl_s + 1
    response = browser.get("/services", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fservices&expired=1"
    assert "Your session expired" in browser.get(response.headers["location"]).text
    write = browser.post("/services", {"name": "late", "url": "http://x"})
    assert write.status_code == 303
    assert write.headers["location"].startswith("/login")


def test_an_idle_session_ends_but_an_active_one_lives_on(env: Env, browser_for: Any) -> None:
    browser: Browser = browser_for("editor")
    for _ in range(3):  # three requests, each within the idle limit, span more than it
        env.clock.now += env.config.session_idle_s - 60
        assert browser.get("/services").status_code == 200
    env.clock.now += env.config.session_idle_s
    assert browser.get("/services", follow_redirects=False).status_code == 303


def test_htmx_requests_are_redirected_with_a_header(env: Env) -> None:
    with TestClient(env.app()) as client:
        response = client.get("/nodes/table", headers={"HX-Request": "true"})
    assert response.status_code == 200
    assert response.headers["hx-redirect"].startswith("/login?next=")


def test_pages_carry_security_headers(admin: Browser) -> None:
    response = admin.get("/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-store"
