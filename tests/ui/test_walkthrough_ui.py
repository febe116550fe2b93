"""The walkthrough done in the browser: log in, create a service, route, consumer and key,
enable pre-function, key-auth and ai-proxy-advanced, watch the node get in sync, copy the proxy
URL and call it with the `openai` package; then see the request in Analytics, and scale the
local data planes to 3 and back to 1.

Analytics and scaling need the control plane's analytics store and data-plane supervisor wired
into `lockgate up` (issue 8); those assertions are in their own tests below.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import openai
import pytest
from playwright.sync_api import Page, expect

from tests.fakes.openai_server import FakeOpenAI
from tests.ui.conftest import UPSTREAM_KEY, UiLockgate, log_in

pytestmark = pytest.mark.e2e

PRE_FUNCTION = """local auth_header = kong.request.get_header("Authorization")
if auth_header and auth_header:find("^Bearer ") then
  local key = auth_header:sub(8)
  kong.service.request.set_header("apikey", key)
end"""


def _targets(upstream: str) -> str:
    return json.dumps(
        [
            {
                "route_type": "llm/v1/chat",
                "auth": {"header_name": "Authorization", "header_value": f"Bearer {UPSTREAM_KEY}"},
                "model": {
                    "provider": "openai",
                    "name": "gpt-4o",
                    "options": {"upstream_url": f"{upstream}/v1/chat/completions"},
                },
            }
        ],
        indent=2,
    )


def _shot(page: Page, screenshots: Path, name: str) -> None:
    page.screenshot(path=str(screenshots / f"{name}.png"), full_page=True)


def configure_walkthrough(page: Page, lg: UiLockgate, fake: FakeOpenAI, shots: Path) -> str:
    """Do the walkthrough's configuration through the UI; returns the consumer's key."""
    ui = lg.ui_url
    page.get_by_role("link", name="Gateway Services").click()
    page.get_by_text("New gateway service").click()
    page.get_by_label("Name").fill("example-service")
    page.get_by_label("Upstream URL").fill(fake.url)
    page.get_by_role("button", name="Create gateway service").click()
    expect(page.get_by_role("status")).to_contain_text("Created gateway service example-service")
    _shot(page, shots, "services")

    page.get_by_role("link", name="Routes").click()
    page.get_by_text("New route").click()
    page.get_by_label("Name").fill("example-route")
    page.get_by_label("Gateway Service").select_option(label="example-service")
    page.get_by_label("Paths").fill("/anything")
    page.get_by_role("button", name="Create route").click()
    expect(page.get_by_role("status")).to_contain_text("Created route example-route")
    expect(page.get_by_role("cell", name="/anything")).to_be_visible()

    page.get_by_role("link", name="Consumers").click()
    page.get_by_text("New consumer").click()
    page.get_by_label("Username").fill("openai-client")
    page.get_by_role("button", name="Create consumer").click()
    page.get_by_role("link", name="openai-client").click()
    page.get_by_role("button", name="Generate key").click()
    expect(page.get_by_role("status")).to_contain_text("shown only once")
    key = page.locator("#new-key").inner_text().strip()
    assert len(key) >= 32
    _shot(page, shots, "consumer-key")

    page.goto(ui + "/plugins")
    page.get_by_role("link", name="pre-function").click()
    page.get_by_label("Access Lua chunk 1").fill(PRE_FUNCTION)
    _shot(page, shots, "plugin-pre-function")
    page.get_by_role("button", name="Enable plugin").click()
    expect(page.get_by_role("status")).to_contain_text("Enabled plugin pre-function")

    page.get_by_role("link", name="key-auth", exact=True).click()
    page.get_by_label("Key Names").fill("apikey")
    page.get_by_role("button", name="Enable plugin").click()
    expect(page.get_by_role("status")).to_contain_text("Enabled plugin key-auth")

    page.get_by_role("link", name="ai-proxy-advanced").click()
    page.get_by_label("Targets").fill(_targets(fake.url))
    page.get_by_role("button", name="Enable plugin").click()
    expect(page.get_by_role("status")).to_contain_text("Enabled plugin ai-proxy-advanced")
    _shot(page, shots, "plugins")
    return key


def wait_in_sync(page: Page, lg: UiLockgate) -> None:
    page.goto(lg.ui_url + "/nodes")
    table = page.locator("#nodes-table")
    expect(table).to_contain_text("in sync", timeout=30_000)
    expect(table).not_to_contain_text("out of sync")


def test_walkthrough_in_the_browser(
    page: Page, gateway: UiLockgate, fake: FakeOpenAI, screenshots: Path
) -> None:
    log_in(page, gateway)
    key = configure_walkthrough(page, gateway, fake, screenshots)

    # An invalid Lua chunk is refused with the compiler's message beside the editor.
    page.goto(gateway.ui_url + "/plugins/new/post-function")
    page.get_by_label("Access Lua chunk 1").fill("local x = (")
    page.get_by_role("button", name="Enable plugin").click()
    expect(page.locator("#c-access-err")).to_contain_text("error parsing post-function")
    _shot(page, screenshots, "plugin-lua-error")

    wait_in_sync(page, gateway)
    _shot(page, screenshots, "nodes")

    page.get_by_role("link", name="Overview").click()
    page.get_by_role("button", name="Copy the proxy URL").click()
    expect(page.get_by_role("button", name="Copy the proxy URL")).to_have_text("Copied")
    proxy_url = page.evaluate("navigator.clipboard.readText()")
    assert proxy_url == gateway.proxy_url
    _shot(page, screenshots, "overview")

    client = openai.OpenAI(api_key=key, base_url=f"{proxy_url}/anything", max_retries=0)
    answer = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Say hello."}]
    )
    assert answer.choices[0].message.content == "Hello! You said: Say hello."
    assert fake.requests[-1].headers.get("authorization") == f"Bearer {UPSTREAM_KEY}"
    wrong = openai.OpenAI(api_key="wrong-key", base_url=f"{proxy_url}/anything", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Say hello."}]
        )


def test_the_request_shows_in_analytics(
    page: Page, gateway: UiLockgate, fake: FakeOpenAI, screenshots: Path
) -> None:
    """Needs analytics wired into `lockgate up` (issue 8: the data planes' reports, the
    control plane's analytics store, and `analytics=` given to the UI)."""
    log_in(page, gateway)
    key = configure_walkthrough(page, gateway, fake, screenshots)
    wait_in_sync(page, gateway)
    proxy = gateway.proxy_url
    client = openai.OpenAI(api_key=key, base_url=f"{proxy}/anything", max_retries=0)
    client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "Say hello."}]
    )
    wrong = openai.OpenAI(api_key="wrong-key", base_url=f"{proxy}/anything", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Say hello."}]
        )
    deadline = time.monotonic() + 30
    while True:
        page.goto(gateway.ui_url + "/analytics?range=15m")
        total = page.locator("#total-requests")
        if total.count() and int(total.inner_text()) >= 2:
            break
        if time.monotonic() > deadline:
            pytest.fail(
                "the request did not reach Analytics within 30 s (it needs the data planes' "
                "analytics reports and the UI's `analytics=` wiring): "
                + page.locator("main").inner_text()
            )
        time.sleep(1)
    expect(page.locator("#table-consumer")).to_contain_text("openai-client")
    expect(page.locator("#table-model")).to_contain_text("gpt-4o")
    status = json.loads(page.locator("#status-chart-data").inner_text())
    assert {d["label"] for d in status["datasets"]} >= {"2xx", "4xx"}
    assert page.locator("#status-chart").get_attribute("data-drawn") == "1"
    _shot(page, screenshots, "analytics")
    page.goto(gateway.ui_url + "/")
    expect(page.locator("#total-requests")).not_to_have_text("0")


def test_scale_local_nodes_to_3_and_back(
    page: Page, gateway: UiLockgate, screenshots: Path
) -> None:
    """Needs the control plane to supervise its data planes (issue 8's supervisor, wired into
    `lockgate up` and passed to the UI as `local_nodes`)."""
    log_in(page, gateway)
    page.goto(gateway.ui_url + "/nodes")
    page.get_by_label("Number of local nodes").fill("3")
    page.get_by_role("button", name="Scale").click()
    expect(page.get_by_role("status")).to_contain_text("Scaling to 3 nodes.")
    table = page.locator("#nodes-table")
    expect(table.locator("tbody tr")).to_have_count(3, timeout=60_000)
    expect(table.get_by_text("in sync")).to_have_count(3, timeout=60_000)
    _shot(page, screenshots, "nodes-scaled")
    page.get_by_label("Number of local nodes").fill("1")
    page.get_by_role("button", name="Scale").click()
    expect(page.get_by_role("status")).to_contain_text("Scaling to 1 nodes.")
    deadline = time.monotonic() + 60
    while page.locator("#scale tbody tr").count() != 1:
        assert time.monotonic() < deadline, page.locator("#scale").inner_text()
        page.reload()
        time.sleep(0.5)
