"""An LLM target's `upstream_url` on a link-local address (cloud metadata services such as
169.254.169.254, IPv6 fe80::/10) is refused when the config is validated, in every spelling
the resolver accepts, both by the plugin schema and through the Admin API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from control_plane.admin.app import create_admin_app
from control_plane.store import open_store
from gateway.llm.schema import allow_link_local_upstreams
from gateway.plugins.ai_proxy_advanced import PLUGIN
from lockgate import settings
from tests.gateway.plugins.ai_proxy_helpers import config, target

REFUSED = [
    "http://169.254.169.254/latest/meta-data/",
    "https://169.254.0.1:8443/v1",
    "http://169.254.255.255",
    "http://[fe80::1]/v1",
    "http://[fe80::a9fe:a9fe%25eth0]:80/v1",
    "http://[febf:ffff::1]/v1",
    "http://[::ffff:169.254.169.254]/v1",
    "http://2852039166/v1",  # 169.254.169.254 as one decimal number
    "http://0251.0376.0251.0376/v1",  # ... in octal
    "http://169.254.169.254./v1",
]
ALLOWED = [
    "http://127.0.0.1:11434/v1",
    "http://169.253.255.255/v1",
    "http://169.255.0.1/v1",
    "http://[fec0::1]/v1",
    "http://[::1]:8080/v1",
    "https://api.openai.com/v1",
    "http://metadata.example/v1",  # names are not resolved at validation time
]


def _with_url(url: str) -> dict[str, Any]:
    model = {"provider": "openai", "name": "gpt-4o", "options": {"upstream_url": url}}
    return config(target(model=model))


@pytest.mark.parametrize("url", REFUSED)
def test_link_local_upstream_url_is_refused(url: str) -> None:
    with pytest.raises(ValidationError) as caught:
        PLUGIN.validate(_with_url(url))
    message = str(caught.value)
    assert "'model.options.upstream_url' points at the link-local address" in message
    assert "cloud metadata" in message


@pytest.mark.parametrize("url", ALLOWED)
def test_other_upstream_urls_are_accepted(url: str) -> None:
    validated = PLUGIN.validate(_with_url(url))
    assert validated.targets[0].model.options.upstream_url == url


@pytest.fixture
def admin(tmp_path: Path) -> Iterator[TestClient]:
    store = open_store(f"sqlite:///{tmp_path / 'lockgate.db'}")
    try:
        app = create_admin_app(store, "token", lambda e: None)
        with TestClient(app, headers={"Kong-Admin-Token": "token"}) as client:
            yield client
    finally:
        store.close()


def test_admin_api_answers_400_with_the_reason(admin: TestClient) -> None:
    body = {"name": "ai-proxy-advanced", "config": _with_url(REFUSED[0])}
    response = admin.post("/plugins", json=body)
    assert response.status_code == 400
    assert "link-local address 169.254.169.254" in response.text
    assert admin.get("/plugins").json()["data"] == []


@pytest.fixture
def link_local_allowed() -> Iterator[None]:
    allow_link_local_upstreams(True)
    try:
        yield
    finally:
        allow_link_local_upstreams(False)


@pytest.mark.parametrize("url", REFUSED[:4])
def test_the_setting_allows_link_local_targets(url: str, link_local_allowed: None) -> None:
    validated = PLUGIN.validate(_with_url(url))
    assert validated.targets[0].model.options.upstream_url == url


def test_admin_api_accepts_them_with_the_setting(
    admin: TestClient, link_local_allowed: None
) -> None:
    body = {"name": "ai-proxy-advanced", "config": _with_url(REFUSED[0])}
    response = admin.post("/plugins", json=body)
    assert response.status_code == 201, response.text
    [stored] = admin.get("/plugins").json()["data"]
    target = stored["config"]["targets"][0]
    assert target["model"]["options"]["upstream_url"] == REFUSED[0]


def test_the_refusal_names_the_setting() -> None:
    with pytest.raises(ValidationError) as caught:
        PLUGIN.validate(_with_url(REFUSED[0]))
    assert "LOCKGATE_ALLOW_LINK_LOCAL_UPSTREAMS=on" in str(caught.value)


@pytest.mark.parametrize(
    ("value", "allowed"), [("", False), ("off", False), ("on", True), ("TRUE", True), ("0", False)]
)
def test_setting_is_read_by_both_planes(value: str, allowed: bool) -> None:
    env = {"LOCKGATE_ALLOW_LINK_LOCAL_UPSTREAMS": value}
    assert settings.control_plane(env).allow_link_local_upstreams is allowed
    assert settings.data_plane(env).allow_link_local_upstreams is allowed


def test_a_bad_value_is_a_clear_error() -> None:
    with pytest.raises(settings.SettingsError, match="LOCKGATE_ALLOW_LINK_LOCAL_UPSTREAMS"):
        settings.control_plane({"LOCKGATE_ALLOW_LINK_LOCAL_UPSTREAMS": "maybe"})
