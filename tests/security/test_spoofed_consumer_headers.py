"""A client cannot tell the upstream who it is: `X-Consumer-*`, `X-Credential-Identifier` and
`X-Anonymous-Consumer` sent by the client are replaced by key-auth's own, in every spelling,
through the real ProxyApp over HTTP to a local upstream that records what it received."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from gateway.context import ConsumerInfo, CredentialInfo
from gateway.credentials import CredentialMatch, InMemoryCredentials
from gateway.entities import Consumer, Ref, Route, Service
from gateway.entities import Plugin as PluginEntity
from gateway.plugins import registry
from gateway.snapshot import Snapshot
from tests.data_plane.proxy_harness import proxy_client
from tests.fakes.openai_server import FakeOpenAI

KEY = "security-consumer-key-1"
CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
SPOOFED = [
    ("X-Consumer-ID", "spoofed-id"),
    ("x-consumer-id", "spoofed-id-2"),
    ("X-Consumer-Custom-ID", "spoofed-custom"),
    ("X-Consumer-Username", "root"),
    ("X-CONSUMER-USERNAME", "root-2"),
    ("X-Credential-Identifier", "spoofed-cred"),
    ("X-Anonymous-Consumer", "false"),
]
GUEST = Consumer(username="guest")
ALL_NAMES = {name.lower() for name, _ in SPOOFED}


def _snapshot(port: int) -> Snapshot:
    service = Service(host="127.0.0.1", port=port, retries=0)
    strict = Route(paths=["/strict"], strip_path=True, service=Ref(id=service.id))
    open_ = Route(paths=["/open"], strip_path=True, service=Ref(id=service.id))
    guest = GUEST
    plugins = (
        PluginEntity(name="key-auth", route=Ref(id=strict.id), config={}),
        PluginEntity(name="key-auth", route=Ref(id=open_.id), config={"anonymous": "guest"}),
    )
    return Snapshot.create(1, (service,), (strict, open_), plugins, (guest,))


def _credentials() -> InMemoryCredentials:
    store = InMemoryCredentials()
    alice = ConsumerInfo(id="c-alice", username="alice")
    store.add(KEY, CredentialMatch(CredentialInfo("cred-alice", "c-alice"), alice))
    return store


@pytest.fixture
def upstream() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as fake:
        yield fake


@pytest.fixture
async def proxy(upstream: FakeOpenAI) -> AsyncIterator[httpx.AsyncClient]:
    async with proxy_client(_snapshot(upstream.port), registry(), _credentials()) as client:
        yield client


def _consumer_headers(upstream: FakeOpenAI) -> dict[str, list[str]]:
    [seen] = upstream.requests
    found: dict[str, list[str]] = {}
    for name, value in seen.headers.items():
        if name.lower() in ALL_NAMES:
            found.setdefault(name.lower(), []).append(value)
    return found


async def test_spoofed_headers_are_replaced_for_an_authenticated_consumer(
    proxy: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    headers = httpx.Headers([("apikey", KEY), *SPOOFED])
    response = await proxy.post("/strict/v1/chat/completions", json=CHAT, headers=headers)
    assert response.status_code == 200
    assert _consumer_headers(upstream) == {
        "x-consumer-id": ["c-alice"],
        "x-consumer-username": ["alice"],
        "x-credential-identifier": ["cred-alice"],
    }


async def test_spoofed_headers_are_replaced_for_the_anonymous_consumer(
    proxy: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    headers = httpx.Headers(SPOOFED)
    response = await proxy.post("/open/v1/chat/completions", json=CHAT, headers=headers)
    assert response.status_code == 200
    assert _consumer_headers(upstream) == {
        "x-consumer-id": [GUEST.id],
        "x-consumer-username": ["guest"],
        "x-anonymous-consumer": ["true"],
    }


async def test_spoofed_headers_without_a_key_never_reach_the_upstream(
    proxy: httpx.AsyncClient, upstream: FakeOpenAI
) -> None:
    response = await proxy.post("/strict/v1/chat/completions", json=CHAT, headers=SPOOFED)
    assert response.status_code == 401
    assert upstream.requests == []
