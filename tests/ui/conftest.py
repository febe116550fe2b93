"""Browser tests: Debian's chromium, headless, driven by Playwright against a real
`lockgate up` (tests/e2e/lockgate_proc.py) with a fake OpenAI upstream.

Screenshots go to $LOCKGATE_SCREENSHOTS_DIR when set (`docs/screenshots` refreshes the
README's), else to a temp directory. `playwright install` is not needed: the browser is
/usr/bin/chromium (`apt-get install chromium`); a missing browser fails the tests.
"""

from __future__ import annotations

import argparse
import io
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from playwright.sync_api import (
    Browser,
    BrowserContext,
    ConsoleMessage,
    Page,
    Response,
    sync_playwright,
)

from lockgate import user_command
from tests.e2e.lockgate_proc import Lockgate
from tests.fakes.openai_server import FakeOpenAI

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
UPSTREAM_KEY = "sk-upstream-ui-0123456789"
UI_USER = "admin"
UI_PASSWORD = "ui-e2e-password"


class UiLockgate(Lockgate):
    """`lockgate up` whose data planes report analytics every second (not every 10)."""

    def env(self) -> dict[str, str]:
        env = super().env()
        env["LOCKGATE_DP_ANALYTICS_FLUSH_S"] = "1"
        return env

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"


def create_ui_user(lg: Lockgate, username: str, password: str, role: str) -> None:
    """`lockgate admin user create` against the gateway's database (before or while it runs)."""
    parser = argparse.ArgumentParser()
    user_command.add_parser(parser.add_subparsers(dest="admin_command"))
    args = parser.parse_args(["user", "create", username, "--role", role, "--password-stdin"])
    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    code = user_command.run(
        args, lg.env(), stdin=io.StringIO(password + "\n"), stdout=io.StringIO(), hasher=cheap
    )
    assert code == 0


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    configured = os.environ.get("LOCKGATE_SCREENSHOTS_DIR")
    path = Path(configured) if configured else tmp_path_factory.mktemp("screenshots")
    path.mkdir(parents=True, exist_ok=True)
    return path


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    assert Path(CHROMIUM).exists(), "install Debian's chromium: apt-get install -y chromium"
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=UPSTREAM_KEY) as server:
        yield server


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[UiLockgate]:
    lg = UiLockgate(data_dir=tmp_path / "data", log_path=tmp_path / "lockgate.log")
    create_ui_user(lg, UI_USER, UI_PASSWORD, "admin")
    lg.start()
    try:
        yield lg
    finally:
        lg.stop()


@pytest.fixture
def context(browser: Browser, gateway: UiLockgate) -> Iterator[BrowserContext]:
    ctx = browser.new_context(viewport={"width": 1440, "height": 900})
    ctx.grant_permissions(["clipboard-read", "clipboard-write"], origin=gateway.ui_url)
    ctx.set_default_timeout(15_000)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context: BrowserContext, gateway: UiLockgate) -> Iterator[Page]:
    opened = context.new_page()
    errors: list[str] = []
    opened.on("pageerror", lambda exc: errors.append(str(exc)))

    def console(msg: ConsoleMessage) -> None:
        # A 4xx answer to a refused form is logged as a console error; it is expected.
        if msg.type == "error" and not msg.text.startswith("Failed to load resource"):
            errors.append(msg.text)

    def response(answer: Response) -> None:
        if "/static/" in answer.url and answer.status >= 400:
            errors.append(f"{answer.status} for {answer.url}")
        if answer.status >= 500:
            errors.append(f"{answer.status} for {answer.url}")

    opened.on("console", console)
    opened.on("response", response)
    yield opened
    assert errors == [], f"browser errors: {errors}\n{gateway.log()}"


def log_in(
    page: Page, lg: UiLockgate, username: str = UI_USER, password: str = UI_PASSWORD
) -> None:
    page.goto(lg.ui_url + "/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(lg.ui_url + "/")
