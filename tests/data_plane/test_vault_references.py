"""A provider key held by the data plane's environment and referenced from the plugin config
(`{vault://env/...}`): the upstream gets the value, the config keeps the reference, and a
reference without a value fails that plugin's requests closed (500, the reason logged without a
value) while the rest of the snapshot is served."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import httpx
import pytest
from pydantic import Field

from data_plane.pipeline import UnresolvedSecret, compile_plugins
from gateway.credentials import InMemoryCredentials
from gateway.entities import Plugin as PluginEntity
from gateway.entities import Ref, Route, Service
from gateway.plugins.base import BuildContext, Handler, Plugin, PluginConfig
from gateway.snapshot import Snapshot
from gateway.vault import EnvVault
from tests.data_plane.test_proxy_server import CHAT, KEY, PROVIDER_KEY, _snapshot, serving
from tests.fakes.openai_server import FakeOpenAI

REFERENCE = "Bearer {vault://env/openai-key}"


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=PROVIDER_KEY) as server:
        yield server


def llm_url(fake: FakeOpenAI) -> str:
    return f"{fake.url}/v1/chat/completions"


async def test_the_upstream_gets_the_value_of_the_reference(fake: FakeOpenAI) -> None:
    snapshot = _snapshot(llm_url(fake), "127.0.0.1", 9, header_value="{vault://env/openai-key}")
    vault = EnvVault({"OPENAI_KEY": f"Bearer {PROVIDER_KEY}"})
    async with (
        serving(snapshot, vault=vault) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        good = await client.post("/llm", json=CHAT, headers={"Authorization": f"Bearer {KEY}"})
    assert good.status_code == 200, good.text
    assert fake.requests[0].headers.get("authorization") == f"Bearer {PROVIDER_KEY}"
    (plugin,) = [p for p in snapshot.plugins if p.name == "ai-proxy-advanced"]
    assert plugin.config["targets"][0]["auth"]["header_value"] == "{vault://env/openai-key}"


async def test_a_reference_inside_a_value_is_a_literal(fake: FakeOpenAI) -> None:
    # Kong resolves a field that is wholly a reference; "Bearer {vault://...}" is sent as is
    # (and the fake provider refuses it).
    snapshot = _snapshot(llm_url(fake), "127.0.0.1", 9, header_value=REFERENCE)
    async with (
        serving(snapshot, vault=EnvVault({"OPENAI_KEY": PROVIDER_KEY})) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        response = await client.post("/llm", json=CHAT, headers={"Authorization": f"Bearer {KEY}"})
    assert response.status_code == 401
    assert fake.requests[0].headers.get("authorization") == REFERENCE


async def test_an_unresolved_reference_fails_its_route_closed(
    fake: FakeOpenAI, caplog: pytest.LogCaptureFixture
) -> None:
    snapshot = _snapshot(
        llm_url(fake), "127.0.0.1", fake.port, header_value="{vault://env/openai-key}"
    )
    vault = EnvVault({"OTHER_KEY": "sk-never-logged"})
    with caplog.at_level(logging.ERROR):
        async with (
            serving(snapshot, vault=vault) as url,
            httpx.AsyncClient(base_url=url) as client,
        ):
            llm = await client.post("/llm", json=CHAT, headers={"Authorization": f"Bearer {KEY}"})
            wrong_key = await client.post("/llm", json=CHAT, headers={"Authorization": "Bearer no"})
            plain = await client.get("/plain/v1/models")
    assert llm.status_code == 500
    assert llm.json() == {
        "message": "An unexpected error occurred",
        "request_id": llm.headers["x-kong-request-id"],
    }
    assert wrong_key.status_code == 401  # key-auth runs first, as before
    assert plain.status_code == 404  # the other route is served (the fake has no such path)
    assert fake.requests == []  # no chat went out without its key
    logged = caplog.text
    assert "environment variable OPENAI_KEY is not set on this data plane" in logged
    assert "config.targets[].auth.header_value" in logged
    assert "sk-never-logged" not in logged


class TokenConfig(PluginConfig):
    token: str = Field(pattern=r"^tok-[a-z]+$")


class TokenPlugin(Plugin[TokenConfig]):
    """A plugin whose referenceable field is validated: the value from the environment is
    checked only on the data plane."""

    name = "token-test"
    priority = 1
    config_model = TokenConfig
    referenceable = ("token",)

    def build(self, config: TokenConfig, deps: BuildContext) -> Handler:
        return Handler()


def test_a_resolved_value_that_breaks_the_config_fails_closed_without_quoting_it() -> None:
    service = Service(host="127.0.0.1", port=9)
    route = Route(paths=["/t"], service=Ref(id=service.id))
    plugin = PluginEntity(name="token-test", config={"token": "{vault://env/token}"})
    snapshot = Snapshot.create(1, (service,), (route,), (plugin,))
    registry = {"token-test": TokenPlugin()}
    secret = "NOT-A-TOKEN-s3cr3t"

    good = compile_plugins(snapshot, registry, InMemoryCredentials(), EnvVault({"TOKEN": "tok-a"}))
    assert good.unresolved == ()

    bad = compile_plugins(snapshot, registry, InMemoryCredentials(), EnvVault({"TOKEN": secret}))
    (reason,) = bad.unresolved
    assert "invalid once its vault references are resolved: token: String should match" in reason
    assert secret not in reason
    (slot,) = bad.by_route[route.id].slots
    assert slot.default is not None and isinstance(slot.default.handler, UnresolvedSecret)
