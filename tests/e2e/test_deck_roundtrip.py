"""decK round trip through real processes: `lockgate deck sync` into a `lockgate up`, `dump`,
then `sync` of that dump into a second, empty `lockgate up`; the consumer's key, stored only as
a hash, still authenticates a real proxied request on the second gateway."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import httpx
import pytest
import yaml

from tests.e2e.http_upstream import serve_http
from tests.e2e.lockgate_proc import Lockgate

pytestmark = pytest.mark.e2e

CONSUMER_KEY = "roundtrip-consumer-key"

DECK_FILE = """\
_format_version: "3.0"
services:
  - name: echo-service
    url: {upstream}
    routes:
      - name: echo-route
        paths:
          - /echo
        plugins:
          - name: key-auth
            config:
              key_names:
                - apikey
consumers:
  - username: roundtrip-client
    keyauth_credentials:
      - key: ${{{{ env "DECK_CONSUMER_KEY" }}}}
"""


class _Echo(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        body = json.dumps({"path": self.path, "apikey": self.headers.get("apikey")}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        return None


@pytest.fixture
def upstream() -> Iterator[str]:
    with serve_http(_Echo) as url:
        yield url


def deck(lg: Lockgate, *args: str) -> subprocess.CompletedProcess[str]:
    env = lg.env()
    env["DECK_CONSUMER_KEY"] = CONSUMER_KEY
    return subprocess.run(
        [sys.executable, "-m", "lockgate", "deck", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def proxied(lg: Lockgate, key: str | None) -> httpx.Response:
    headers = {} if key is None else {"apikey": key}
    return httpx.get(f"{lg.proxy_url}/echo/hello", headers=headers, timeout=10)


def test_dump_then_sync_into_an_empty_gateway_keeps_keys_working(
    upstream: str, tmp_path: Path
) -> None:
    state = tmp_path / "kong.yaml"
    state.write_text(DECK_FILE.format(upstream=upstream))
    dumped = tmp_path / "dump.yaml"

    first = Lockgate(data_dir=tmp_path / "first", log_path=tmp_path / "first.log")
    first.start()
    try:
        synced = deck(first, "sync", str(state))
        assert synced.returncode == 0, synced.stderr
        assert "creating keyauth_credential" in synced.stdout
        assert CONSUMER_KEY not in synced.stdout + synced.stderr
        first.wait_ready()
        assert proxied(first, CONSUMER_KEY).status_code == 200
        assert proxied(first, "wrong").status_code == 401

        result = deck(first, "dump", "--with-id", "-o", str(dumped))
        assert result.returncode == 0, result.stderr
    finally:
        assert first.stop() == 0, first.log()

    text = dumped.read_text()
    assert CONSUMER_KEY not in text
    assert "key_hash: sha256:" in text

    second = Lockgate(data_dir=tmp_path / "second", log_path=tmp_path / "second.log")
    second.start()
    try:
        assert proxied(second, CONSUMER_KEY).status_code == 404  # empty: no route yet
        synced = deck(second, "sync", str(dumped))
        assert synced.returncode == 0, synced.stderr
        assert "Created: 5" in synced.stdout
        second.wait_ready()

        reply = proxied(second, CONSUMER_KEY)
        assert reply.status_code == 200, reply.text
        assert reply.json()["path"] == "/hello"  # strip_path kept by the round trip
        assert proxied(second, "wrong").status_code == 401
        assert proxied(second, None).status_code == 401

        again = deck(second, "sync", str(dumped))
        assert again.returncode == 0, again.stderr
        assert again.stdout == "Summary:\n  Created: 0\n  Updated: 0\n  Deleted: 0\n"
        redump = deck(second, "dump", "--with-id")
        assert redump.returncode == 0, redump.stderr
        assert yaml.safe_load(redump.stdout) == yaml.safe_load(text)
    finally:
        assert second.stop() == 0, second.log()
