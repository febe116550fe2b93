"""Provider keys and consumer keys never show in the web UI or in analytics.

The walkthrough's config (the README's decK file, with a recognizable provider key and
consumer key) goes in through the Admin API; requests go through the real ProxyApp with the
analytics observer, and the counted minutes travel as the data plane ships them (the protobuf
batch) into the control plane's analytics store. Then admin, editor and viewer each walk every
UI page reachable from the app's GET routes (ids of the real entities substituted, links and
htmx fragments followed), plus the Admin API's `GET /analytics/requests` and the data plane's
Prometheus text: no response body or header holds either key, the consumer key's SHA-256, or
any 12-character piece of them.

And the plugin form's round trip: the edit form submitted unchanged keeps the stored provider
key; a new value replaces it; a placeholder moved out of a secret field is refused.
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx
import pytest
from argon2 import PasswordHasher
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from control_plane.admin.app import create_admin_app
from control_plane.analytics import groups_of
from control_plane.analytics_api import AnalyticsSource, add_analytics_routes
from control_plane.nodes import NodeRegistry, NodeStatus
from control_plane.publisher import Publisher
from control_plane.store import Store
from control_plane.store.sql import SqlStore, create_store_engine
from control_plane.store.sql_analytics import SqlAnalytics
from control_plane.store.users import UserStore
from control_plane.ui import UiConfig, create_ui_app
from control_plane.ui.plugin_forms import plugin_schema
from control_plane.ui.plugin_secrets import masked, restored
from data_plane.analytics import RequestObserver
from data_plane.analytics_sender import build_batch
from data_plane.analytics_window import MinuteWindow
from data_plane.metrics import DataPlaneMetrics
from data_plane.proxy import ProxyApp
from data_plane.runtime import RuntimeHolder, compile_runtime
from data_plane.upstream import UpstreamClient
from gateway.plugins import registry
from tests.control_plane.ui.conftest import PASSWORD, Browser, FakeLocalNodes
from tests.fakes.openai_server import FakeOpenAI
from tests.security.walkthrough_config import StoreCredentials, walkthrough_document

PROVIDER_KEY = "sk-lockgate-provider-5f3a9c1e7b2d4068"
CONSUMER_KEY = "ck-lockgate-consumer-7c41e09b"
NEW_PROVIDER_KEY = "sk-lockgate-rotated-9e0d2c4b6a8f1357"
TYPED_KEY = "sk-lockgate-typed-3b5d7f9a1c2e4608"
CONSUMER_HASH = hashlib.sha256(CONSUMER_KEY.encode()).hexdigest()
TOKEN = "admin-token-for-ui-secret-tests"
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}
ROLES = ("admin", "editor", "viewer")
STORED = "[stored secret: targets[0].auth.header_value]"
MAX_PAGES_PER_ROLE = 400
LINK = re.compile(r'(?:href|hx-get|src)="(/[^"]*)"')


def _pieces(secret: str, size: int = 12) -> set[str]:
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


SECRET_PIECES = {
    name: _pieces(value)
    for name, value in {
        "provider key": PROVIDER_KEY,
        "rotated provider key": NEW_PROVIDER_KEY,
        "typed provider key": TYPED_KEY,
        "consumer key": CONSUMER_KEY,
        "consumer key hash": CONSUMER_HASH,
    }.items()
}


def assert_hidden(where: str, text: str) -> None:
    for name, pieces in SECRET_PIECES.items():
        for piece in pieces:
            assert piece not in text, f"{name} (piece {piece!r}) shown in {where}"


class Reply(Protocol):
    """A response of httpx or of the TestClient (whose httpx may be another build)."""

    @property
    def text(self) -> str: ...
    @property
    def headers(self) -> Mapping[str, str]: ...


def assert_response_hidden(where: str, response: Reply) -> None:
    assert_hidden(f"{where} body", response.text)
    assert_hidden(f"{where} headers", "\n".join(f"{k}: {v}" for k, v in response.headers.items()))


@dataclass
class Setup:
    store: Store
    users: UserStore
    analytics: SqlAnalytics
    admin_api: TestClient
    ui_app: FastAPI
    upstream: FakeOpenAI
    metrics_text: str
    batch_bytes: bytes
    clients: list[TestClient] = field(default_factory=list)

    def browser(self, role: str) -> Browser:
        name = f"{role}-user"
        if self.users.get(name) is None:
            self.users.create(name, PASSWORD, role)
        client = TestClient(self.ui_app)
        self.clients.append(client)
        browser = Browser(client)
        assert browser.login(name).status_code == 303
        return browser

    def entities(self, path: str) -> list[dict[str, Any]]:
        reply = self.admin_api.get(path)
        assert reply.status_code == 200, reply.text
        data: list[dict[str, Any]] = reply.json()["data"]
        return data

    def ai_plugin(self) -> dict[str, Any]:
        [plugin] = [p for p in self.entities("/plugins") if p["name"] == "ai-proxy-advanced"]
        return plugin


async def _drive(store: Store, window: MinuteWindow) -> list[int]:
    """The walkthrough's requests through the real ProxyApp, counted by the analytics
    observer: the right key (plain and streamed), a wrong key, and none."""
    holder = RuntimeHolder()
    holder.swap(compile_runtime(store.snapshot(), registry(), StoreCredentials(store)))
    upstream = UpstreamClient()
    await upstream.start()
    app = ProxyApp(holder, upstream, observer=RequestObserver(window))
    statuses = []
    try:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
            for key, stream in ((CONSUMER_KEY, False), (CONSUMER_KEY, True), ("wrong", False)):
                reply = await client.post(
                    "/anything/v1/chat/completions",
                    json={**CHAT, "stream": stream},
                    headers={"Authorization": f"Bearer {key}"},
                )
                assert_response_hidden(f"the proxy's answer to key {key}", reply)
                statuses.append(reply.status_code)
            reply = await client.post("/anything/v1/chat/completions", json=CHAT)
            statuses.append(reply.status_code)
    finally:
        await upstream.close()
    return statuses


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    engine = create_store_engine(f"sqlite:///{tmp_path / 'lockgate.db'}")
    store = SqlStore(engine)
    store.migrate()
    users = UserStore(engine, PasswordHasher(time_cost=1, memory_cost=8, parallelism=1))
    analytics = SqlAnalytics(engine)
    admin_app = create_admin_app(store, TOKEN, lambda e: None)
    add_analytics_routes(admin_app, analytics)
    with (
        FakeOpenAI(api_key=PROVIDER_KEY) as upstream,
        TestClient(admin_app, headers={"Kong-Admin-Token": TOKEN}) as admin_api,
    ):
        applied = admin_api.post(
            "/config", json=walkthrough_document(upstream.url, PROVIDER_KEY, CONSUMER_KEY)
        )
        assert applied.status_code in (200, 201), applied.text

        window = MinuteWindow()
        assert asyncio.run(_drive(store, window)) == [200, 200, 401, 401]
        metrics_text = DataPlaneMetrics(window).render()
        batch = build_batch("node-1", "instance-1", 1, window.pending())
        assert analytics.upsert("node-1", "instance-1", 1, groups_of(batch)) > 0

        nodes = NodeRegistry()
        nodes.connect(
            NodeStatus(
                id="node-1",
                hostname="dp-host",
                ip="127.0.0.1",
                version="0.1.0",
                labels={},
                plugins={},
                config_hash="0" * 32,
                config_version=1,
                last_error=None,
            )
        )
        ui_app = create_ui_app(
            store,
            users,
            nodes,
            Publisher(store.snapshot),
            lambda e: None,
            config=UiConfig(proxy_url="http://proxy.example:8000"),
            analytics=AnalyticsSource(analytics),
            local_nodes=FakeLocalNodes(),
        )
        made = Setup(
            store,
            users,
            analytics,
            admin_api,
            ui_app,
            upstream,
            metrics_text,
            batch.SerializeToString(),
        )
        yield made
        for client in made.clients:
            client.close()
    store.close()


def _seeds(setup: Setup) -> list[str]:
    """Every GET route of the UI app, with each path parameter replaced by every real value."""
    values = {
        "/services/{ident}": [v for s in setup.entities("/services") for v in (s["id"], s["name"])],
        "/routes/{ident}": [v for r in setup.entities("/routes") for v in (r["id"], r["name"])],
        "/consumers/{ident}": [
            v for c in setup.entities("/consumers") for v in (c["id"], c["username"])
        ],
        "/plugins/{ident}": [p["id"] for p in setup.entities("/plugins")],
        "/plugins/new/{name}": sorted(registry()),
    }
    seeds: list[str] = []
    for route in setup.ui_app.routes:
        if not isinstance(route, APIRoute) or "GET" not in (route.methods or ()):
            continue
        if "{" not in route.path:
            seeds.append(route.path)
            continue
        assert route.path in values, f"no real values for the GET route {route.path}"
        param = route.path[route.path.index("{") : route.path.index("}") + 1]
        assert values[route.path], f"no entity to fill {route.path}"
        seeds.extend(route.path.replace(param, str(v)) for v in values[route.path])
    return seeds


class GetForms(HTMLParser):
    """`action?name=value` for every option of every select in the page's GET forms (the
    analytics time ranges, the audit log's filters)."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.select: str | None = None
        self.urls: list[str] = []
        self._option: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            get = a.get("method", "get").lower() == "get"
            self.action = a.get("action") if get else None
        elif tag == "select" and self.action:
            self.select = a.get("name")
        elif tag == "option" and self.select:
            self._option = None if "value" in a else ""
            if "value" in a:
                self._add(a["value"])

    def handle_data(self, data: str) -> None:
        if self._option == "" and data.strip():
            self._add(data.strip())

    def handle_endtag(self, tag: str) -> None:
        if tag == "option":
            self._option = None
        elif tag == "select":
            self.select = None
        elif tag == "form":
            self.action = None

    def _add(self, value: str) -> None:
        assert self.action is not None and self.select is not None
        self.urls.append(f"{self.action}?{urlencode({self.select: value})}")


def _crawl(browser: Browser, seeds: list[str], role: str) -> list[str]:
    """GET every seed and every same-site link, `hx-get` fragment, script/image source and
    GET-form choice the pages name (htmx fragments also as htmx asks for them); returns the
    URLs checked."""
    queue, seen, checked = list(seeds), set(seeds), list[str]()
    while queue:
        url = queue.pop(0)
        assert len(checked) < MAX_PAGES_PER_ROLE, "the crawl did not end"
        response = browser.get(url, follow_redirects=False)
        assert response.status_code < 500, f"{url}: {response.status_code}"
        assert_response_hidden(f"{url} as {role}", response)
        checked.append(url)
        if url.startswith("/static/"):
            continue
        fragment = browser.get(url, headers={"HX-Request": "true"}, follow_redirects=False)
        assert_response_hidden(f"{url} (htmx) as {role}", fragment)
        checked.append(f"{url} (htmx)")
        if "text/html" not in response.headers.get("content-type", ""):
            continue
        forms = GetForms()
        forms.feed(response.text)
        for link in [*LINK.findall(response.text), *forms.urls]:
            target = html.unescape(link)
            if target not in seen:
                seen.add(target)
                queue.append(target)
    return checked


def test_no_key_in_any_ui_page_analytics_or_metrics(setup: Setup) -> None:
    # The keys are stored: the Admin API shows the provider key to an admin, as Kong does.
    assert PROVIDER_KEY in json.dumps(setup.ai_plugin()["config"])
    assert_hidden("the analytics batch a data plane sends", setup.batch_bytes.decode("latin-1"))
    assert_hidden("the data plane's Prometheus metrics", setup.metrics_text)
    assert b"openai-client" in setup.batch_bytes  # the consumer is named, by username
    assert 'service="example-service"' in setup.metrics_text

    seeds = _seeds(setup)
    checked = 0
    for role in ROLES:
        urls = _crawl(setup.browser(role), seeds, role)
        assert "/analytics" in urls and "/nodes/table (htmx)" in urls
        assert "/analytics?range=30d" in urls
        assert any(u.startswith("/plugins/") and "new" not in u for u in urls)
        checked += len(urls)

    for group_by in ("", "consumer", "consumer,model,provider,route,service,status_class"):
        answer = setup.admin_api.get(
            "/analytics/requests", params={"group_by": group_by, "interval": "minute"}
        )
        assert answer.status_code == 200, answer.text
        assert answer.json()["data"], "no analytics rows: the pipeline is not wired"
        assert_response_hidden(f"GET /analytics/requests?group_by={group_by}", answer)
        checked += 1
    assert (
        "openai-client"
        in setup.admin_api.get("/analytics/requests", params={"group_by": "consumer"}).text
    )
    print(f"\nresponses checked for keys: {checked}")
    assert checked >= 100


class FormReader(HTMLParser):
    """The fields a browser would submit from the form posting to `action`."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action = action
        self.inside = False
        self.fields: list[tuple[str, str]] = []
        self._textarea: str | None = None
        self._text = ""
        self._select: str | None = None
        self._options: list[tuple[str, bool]] = []
        self._option: tuple[str | None, bool] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("action") == self.action
        if not self.inside:
            return
        if tag == "input" and a.get("name"):
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.fields.append((a["name"], a.get("value") or "on"))
            elif kind not in ("submit", "button"):
                self.fields.append((a["name"], a.get("value", "")))
        elif tag == "textarea":
            self._textarea, self._text = a.get("name"), ""
        elif tag == "select":
            self._select, self._options = a.get("name"), []
        elif tag == "option":
            self._option = (a.get("value") if "value" in a else None, "selected" in a)
            self._text = ""

    def handle_data(self, data: str) -> None:
        if self._textarea is not None or self._option is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "textarea" and self._textarea is not None:
            self.fields.append((self._textarea, self._text.removeprefix("\n")))
            self._textarea = None
        elif tag == "option" and self._option is not None:
            value, selected = self._option
            self._options.append((self._text if value is None else value, selected))
            self._option = None
        elif tag == "select" and self._select is not None:
            chosen = [v for v, s in self._options if s] or [v for v, _ in self._options[:1]]
            self.fields.extend((self._select, v) for v in chosen)
            self._select = None


def _edit_form(browser: Browser, plugin_id: str) -> list[tuple[str, str]]:
    page = browser.get(f"/plugins/{plugin_id}")
    assert page.status_code == 200
    assert_response_hidden("the plugin edit page", page)
    assert STORED in html.unescape(page.text)
    assert "type a new value to replace it" in page.text
    reader = FormReader(f"/plugins/{plugin_id}")
    reader.feed(page.text)
    assert any(name == "config.targets" for name, _ in reader.fields), reader.fields
    return reader.fields


def _submit(browser: Browser, plugin_id: str, fields: list[tuple[str, str]]) -> Any:
    body = [(k, v) for k, v in fields if k != "csrf_token"]
    body.append(("csrf_token", browser.csrf))
    return browser.client.post(
        f"/plugins/{plugin_id}",
        content=urlencode(body).encode(),
        headers={"content-type": "application/x-www-form-urlencoded"},
        follow_redirects=False,
    )


def _with_targets(fields: list[tuple[str, str]], edit: Any) -> list[tuple[str, str]]:
    out = []
    for name, value in fields:
        if name == "config.targets":
            targets = json.loads(value)
            edit(targets)
            value = json.dumps(targets, indent=2)
        out.append((name, value))
    return out


def test_plugin_form_keeps_replaces_and_guards_the_provider_key(setup: Setup) -> None:
    original = setup.ai_plugin()
    plugin_id = original["id"]
    admin, editor, viewer = (setup.browser(role) for role in ROLES)

    # Unchanged, by an admin and by an editor: the stored key (and all the config) stays.
    for browser in (admin, editor):
        saved = _submit(browser, plugin_id, _edit_form(browser, plugin_id))
        assert saved.status_code == 303, saved.text
        after = setup.ai_plugin()
        assert after["config"] == original["config"]
        target = after["config"]["targets"][0]
        assert target["auth"]["header_value"] == f"Bearer {PROVIDER_KEY}"
    refused = _submit(viewer, plugin_id, _edit_form(viewer, plugin_id))
    assert refused.status_code == 403

    # The placeholder moved out of its secret field: refused, nothing stored, nothing shown.
    def leak(targets: list[dict[str, Any]]) -> None:
        targets[0]["model"]["name"] = targets[0]["auth"]["header_value"]

    moved = _submit(admin, plugin_id, _with_targets(_edit_form(admin, plugin_id), leak))
    assert moved.status_code == 400
    assert "can only stay in a secret field" in html.unescape(moved.text)
    assert_response_hidden("the refused form (moved placeholder)", moved)
    assert setup.ai_plugin()["config"] == original["config"]

    # A new key typed into a form refused for another field is not drawn back.
    def typed_but_bad(targets: list[dict[str, Any]]) -> None:
        targets[0]["auth"]["header_value"] = f"Bearer {TYPED_KEY}"
        targets[0]["model"]["options"]["temperature"] = 99

    bad = _submit(admin, plugin_id, _with_targets(_edit_form(admin, plugin_id), typed_but_bad))
    assert bad.status_code == 400, bad.text
    assert_response_hidden("the refused form (new key typed)", bad)
    assert "[new secret: type it again]" in html.unescape(bad.text)
    assert setup.ai_plugin()["config"] == original["config"]

    # A new value replaces the key; the page then shows the placeholder, never the new key.
    def rotate(targets: list[dict[str, Any]]) -> None:
        assert targets[0]["auth"]["header_value"] == STORED
        targets[0]["auth"]["header_value"] = f"Bearer {NEW_PROVIDER_KEY}"

    rotated = _submit(admin, plugin_id, _with_targets(_edit_form(admin, plugin_id), rotate))
    assert rotated.status_code == 303, rotated.text
    target = setup.ai_plugin()["config"]["targets"][0]
    assert target["auth"]["header_value"] == f"Bearer {NEW_PROVIDER_KEY}"
    for browser in (admin, editor, viewer):
        _edit_form(browser, plugin_id)  # asserts the placeholder and no key


def test_placeholders_name_their_own_secret_and_null_clears() -> None:
    schema = plugin_schema(registry()["ai-proxy-advanced"])

    def target(name: str, key: str | None) -> dict[str, Any]:
        auth = {"header_name": "Authorization", "header_value": key}
        return {"route_type": "llm/v1/chat", "auth": auth, "model": {"provider": "openai"}}

    stored = {"targets": [target("a", "Bearer key-a"), target("b", "Bearer key-b")]}
    shown = masked(stored, schema)
    assert "key-a" not in json.dumps(shown) and "key-b" not in json.dumps(shown)
    first, second = shown["targets"]
    assert second["auth"]["header_value"] == "[stored secret: targets[1].auth.header_value]"

    # The first target removed: the one left keeps its own key, not the removed one's.
    config, errors = restored({"targets": [second]}, stored, schema)
    assert errors == {}
    assert config["targets"][0]["auth"]["header_value"] == "Bearer key-b"

    # null clears a key; a new value replaces one; the other keeps its stored value.
    first["auth"]["header_value"] = None
    second["auth"]["header_value"] = "Bearer key-c"
    config, errors = restored({"targets": [first, second]}, stored, schema)
    assert errors == {}
    assert [t["auth"]["header_value"] for t in config["targets"]] == [None, "Bearer key-c"]

    # A placeholder on a new plugin (nothing stored) names nothing: refused, not stored.
    config, errors = restored(masked(stored, schema), {}, schema)
    assert "names no stored secret" in errors["targets"]


def test_a_vault_reference_is_shown_as_it_is_and_kept() -> None:
    schema = plugin_schema(registry()["ai-proxy-advanced"])
    reference = "{vault://env/openai-auth-header}"
    auth = {"header_name": "Authorization", "header_value": reference}
    stored = {"targets": [{"route_type": "llm/v1/chat", "auth": auth, "model": {}}]}
    shown = masked(stored, schema)
    assert shown["targets"][0]["auth"]["header_value"] == reference  # not a secret
    config, errors = restored(shown, stored, schema)
    assert errors == {}
    assert config["targets"][0]["auth"]["header_value"] == reference
