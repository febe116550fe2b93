"""Kong's how-to "Authenticate OpenAI SDK clients with Key Authentication", end to end:
real `lockgate up` (control plane + data plane processes, gRPC sync), `lockgate deck sync`, the
how-to's two scripts with the real `openai` package, and a fake OpenAI upstream over real HTTP."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.e2e.lockgate_proc import ADMIN_TOKEN, Lockgate
from tests.fakes.openai_server import FakeOpenAI

pytestmark = pytest.mark.e2e

UPSTREAM_KEY = "sk-upstream-e2e-0123456789"
CONSUMER_KEY = "my-consumer-key"

# The how-to's decK config, with the service and upstream_url pointing at the local fake.
DECK_FILE = """\
_format_version: "3.0"
services:
  - name: example-service
    url: {upstream}
    routes:
      - name: example-route
        paths:
          - /anything
consumers:
  - username: openai-client
    keyauth_credentials:
      - key: my-consumer-key
plugins:
  - name: pre-function
    config:
      access:
        - |-
          local auth_header = kong.request.get_header("Authorization")
          if auth_header and auth_header:find("^Bearer ") then
            local key = auth_header:sub(8)
            kong.service.request.set_header("apikey", key)
          end
  - name: key-auth
    config:
      key_names:
        - apikey
  - name: ai-proxy-advanced
    config:
      targets:
        - route_type: llm/v1/chat
          auth:
            header_name: Authorization
            header_value: Bearer ${{{{ env "DECK_OPENAI_API_KEY" }}}}
          model:
            provider: openai
            name: gpt-4o
            options:
              max_tokens: 512
              temperature: 1.0
              upstream_url: {upstream}/v1/chat/completions
"""

# The how-to's scripts, unchanged but for the base URL.
GOOD_SCRIPT = """\
from openai import OpenAI

kong_url = "{proxy}"
kong_route = "anything"

client = OpenAI(
    api_key="my-consumer-key",
    base_url=f"{{kong_url}}/{{kong_route}}"
)

response = client.chat.completions.create(
    model="gpt-4o",
    messages=[{{"role": "user", "content": "Say hello."}}]
)

print(response.choices[0].message.content)
"""

WRONG_KEY_SCRIPT = """\
from openai import OpenAI

kong_url = "{proxy}"
kong_route = "anything"

client = OpenAI(
    api_key="wrong-key",
    base_url=f"{{kong_url}}/{{kong_route}}"
)

try:
    response = client.chat.completions.create(
        model="gpt-4o",
        messages=[{{"role": "user", "content": "Say hello."}}]
    )
    print(response.choices[0].message.content)
except Exception as e:
    print(f"Expected error: {{e}}")
"""


@pytest.fixture
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(api_key=UPSTREAM_KEY) as server:
        yield server


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Lockgate]:
    lg = Lockgate(data_dir=tmp_path / "data", log_path=tmp_path / "lockgate.log")
    lg.start()
    try:
        yield lg
    finally:
        lg.stop()


def deck(
    lg: Lockgate, *args: str, env_extra: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    env = lg.env()
    env.update(env_extra or {})
    return subprocess.run(
        [sys.executable, "-m", "lockgate", "deck", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def run_script(path: Path, source: str) -> subprocess.CompletedProcess[str]:
    path.write_text(source)
    return subprocess.run(
        [sys.executable, str(path)], capture_output=True, text=True, timeout=60, check=False
    )


def admin_count(lg: Lockgate, path: str) -> int:
    reply = httpx.get(f"{lg.admin_url}{path}", headers={"Kong-Admin-Token": ADMIN_TOKEN}, timeout=5)
    assert reply.status_code == 200, reply.text
    return len(reply.json()["data"])


def sync_howto(lg: Lockgate, fake: FakeOpenAI, tmp_path: Path) -> None:
    deck_file = tmp_path / "kong.yaml"
    deck_file.write_text(DECK_FILE.format(upstream=fake.url))
    result = deck(lg, "sync", str(deck_file), env_extra={"DECK_OPENAI_API_KEY": UPSTREAM_KEY})
    assert result.returncode == 0, result.stderr + result.stdout
    assert "creating service example-service" in result.stdout
    assert "creating consumer openai-client" in result.stdout
    assert "Created: " in result.stdout
    assert UPSTREAM_KEY not in result.stdout + result.stderr
    lg.wait_ready()


def check_walkthrough(lg: Lockgate, fake: FakeOpenAI, tmp_path: Path) -> None:
    before = len(fake.requests)
    good = run_script(tmp_path / "test_openai.py", GOOD_SCRIPT.format(proxy=lg.proxy_url))
    assert good.returncode == 0, good.stderr
    assert "Say hello." in good.stdout  # the fake's reply echoes the prompt

    wrong = run_script(
        tmp_path / "test_openai_wrong_key.py", WRONG_KEY_SCRIPT.format(proxy=lg.proxy_url)
    )
    assert wrong.returncode == 0, wrong.stderr
    assert wrong.stdout.startswith("Expected error: Error code: 401")
    assert "Unauthorized" in wrong.stdout

    client = openai.OpenAI(api_key="wrong-key", base_url=f"{lg.proxy_url}/anything", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        client.chat.completions.create(
            model="gpt-4o", messages=[{"role": "user", "content": "Say hello."}]
        )
    assert caught.value.status_code == 401

    # Only the good request reached the model, with the upstream key and the configured options.
    received = fake.requests[before:]
    assert len(received) == 1
    request = received[0]
    assert request.path == "/v1/chat/completions"
    assert request.headers.get("authorization") == f"Bearer {UPSTREAM_KEY}"
    assert request.json["model"] == "gpt-4o"
    assert request.json["max_tokens"] == 512
    assert request.json["temperature"] == 1.0
    for name, value in request.headers.items():
        assert CONSUMER_KEY not in value, f"consumer key leaked upstream in {name}"
    assert "apikey" not in request.headers.names()


def test_howto_walkthrough_survives_restart(fake: FakeOpenAI, tmp_path: Path) -> None:
    lg = Lockgate(data_dir=tmp_path / "data", log_path=tmp_path / "lockgate.log")
    lg.start()
    try:
        sync_howto(lg, fake, tmp_path)
        check_walkthrough(lg, fake, tmp_path)

        # A request with no key at all.
        reply = httpx.post(f"{lg.proxy_url}/anything/chat/completions", json={}, timeout=10)
        assert reply.status_code == 401
        assert reply.json()["message"] == "No API key found in request"
        assert reply.headers["www-authenticate"] == "Key"

        # Syncing the same file again changes nothing.
        deck_file = tmp_path / "kong.yaml"
        again = deck(lg, "sync", str(deck_file), env_extra={"DECK_OPENAI_API_KEY": UPSTREAM_KEY})
        assert again.returncode == 0, again.stderr
        assert "Created: 0" in again.stdout and "Updated: 0" in again.stdout
    finally:
        assert lg.stop() == 0, lg.log()

    lg.start()
    try:
        check_walkthrough(lg, fake, tmp_path)
    finally:
        assert lg.stop() == 0, lg.log()


def test_bad_decks_write_nothing(gateway: Lockgate, fake: FakeOpenAI, tmp_path: Path) -> None:
    good = DECK_FILE.format(upstream=fake.url)
    path = tmp_path / "bad.yaml"

    # A missing DECK_ variable: the CLI names it and sends nothing.
    path.write_text(good)
    result = deck(gateway, "sync", str(path))
    assert result.returncode != 0
    assert "DECK_OPENAI_API_KEY" in result.stderr

    # An unknown entity type.
    path.write_text(good + "upstreams:\n  - name: u1\n")
    result = deck(gateway, "sync", str(path), env_extra={"DECK_OPENAI_API_KEY": UPSTREAM_KEY})
    assert result.returncode != 0
    assert "upstreams" in result.stderr

    # Lua that does not compile: rejected by the control plane as a whole.
    path.write_text(good.replace("local key = auth_header:sub(8)", "local key = = 1"))
    result = deck(gateway, "sync", str(path), env_extra={"DECK_OPENAI_API_KEY": UPSTREAM_KEY})
    assert result.returncode != 0
    assert "error parsing pre-function" in result.stderr

    for entity in ("/services", "/routes", "/consumers", "/plugins"):
        assert admin_count(gateway, entity) == 0, entity


def test_admin_api_needs_the_token(gateway: Lockgate) -> None:
    assert httpx.get(f"{gateway.admin_url}/services", timeout=5).status_code == 401
    reply = httpx.get(
        f"{gateway.admin_url}/services",
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        timeout=5,
    )
    assert reply.status_code == 200
    assert reply.json() == {"data": [], "next": None}
