"""Consumer keys and provider keys never show: the walkthrough's config goes in through the
Admin API (`POST /config`), a ProxyApp serves the resulting snapshot with credentials looked up
in the same store, and then neither key string appears in any log record (DEBUG, every logger),
in the sanitized dump, in `GET /key-auths`, in the audit log, in the `POST /config` report, or
in what the upstream received besides the provider key in its own header."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from control_plane.admin.app import create_admin_app
from control_plane.store import Store, open_store
from gateway.plugins import registry
from tests.data_plane.proxy_harness import proxy_client
from tests.fakes.openai_server import FakeOpenAI
from tests.security.walkthrough_config import StoreCredentials, walkthrough_document

CONSUMER_KEY = "my-consumer-key"  # as in the walkthrough's decK file
PROVIDER_KEY = "sk-provider-security-0123456789abcdef"
TOKEN = "admin-token-for-security-tests"
CHAT = {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = open_store(f"sqlite:///{tmp_path / 'lockgate.db'}")
    yield opened
    opened.close()


def _assert_hidden(where: str, text: str) -> None:
    assert CONSUMER_KEY not in text, f"consumer key shown in {where}"
    assert PROVIDER_KEY not in text, f"provider key shown in {where}"


def test_keys_never_appear_in_logs_dumps_key_auths_or_audit(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    app = create_admin_app(store, TOKEN, lambda e: None)
    with FakeOpenAI(api_key=PROVIDER_KEY) as upstream:
        with TestClient(app, headers={"Kong-Admin-Token": TOKEN}) as admin:
            applied = admin.post("/config", json=walkthrough_document(upstream.url, PROVIDER_KEY))
            assert applied.status_code in (200, 201), applied.text
            _assert_hidden("the POST /config report", applied.text)

            async def drive() -> list[int]:
                statuses = []
                snapshot = store.snapshot()
                async with proxy_client(snapshot, registry(), StoreCredentials(store)) as client:
                    for key in (CONSUMER_KEY, "wrong-key", None):
                        headers = {"Authorization": f"Bearer {key}"} if key else {}
                        reply = await client.post(
                            "/anything/v1/chat/completions", json=CHAT, headers=headers
                        )
                        _assert_hidden(f"the proxy's answer to key {key}", reply.text)
                        statuses.append(reply.status_code)
                return statuses

            assert asyncio.run(drive()) == [200, 401, 401]

            dump = admin.get("/config", params={"sanitize": "true"})
            assert dump.status_code == 200
            assert dump.json()["consumers"][0]["username"] == "openai-client"
            _assert_hidden("GET /config?sanitize=true", dump.text)

            key_auths = admin.get("/key-auths")
            assert key_auths.status_code == 200 and len(key_auths.json()["data"]) == 1
            _assert_hidden("GET /key-auths", key_auths.text)

            audit = admin.get("/audit-logs")
            assert audit.status_code == 200 and audit.json()["data"], "no audit entries"
            _assert_hidden("GET /audit-logs", audit.text)

        [seen] = upstream.requests
        for name, value in seen.headers.items():
            assert CONSUMER_KEY not in value, f"consumer key sent upstream in {name}"
        assert seen.headers.get("Authorization") == f"Bearer {PROVIDER_KEY}"

    assert caplog.records, "nothing was logged: the capture is not wired"
    for record in caplog.records:
        _assert_hidden(f"log record {record.name}", record.getMessage())
        _assert_hidden(f"log record {record.name} extras", repr(record.__dict__))
    _assert_hidden("the captured log text", caplog.text)
