"""The how-to walkthrough with the provider key kept on the data planes: the decK file holds
`{vault://env/openai-auth-header}` instead of the key, `lockgate up` runs with
OPENAI_AUTH_HEADER set, and the OpenAI SDK scripts work as with the key in the config, while the
control plane's database, Admin API and `deck dump` only ever hold the reference."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.e2e.lockgate_proc import ADMIN_TOKEN, Lockgate
from tests.e2e.sync_procs import scrape
from tests.e2e.test_walkthrough import (
    DECK_FILE,
    UPSTREAM_KEY,
    check_walkthrough,
    deck,
    fake,
)
from tests.fakes.openai_server import FakeOpenAI
from tests.faults.walkthrough import chat

pytestmark = pytest.mark.e2e
__all__ = ["fake"]  # fixture: the fake OpenAI that wants UPSTREAM_KEY

REFERENCE = "{vault://env/openai-auth-header}"
VAULT_DECK = DECK_FILE.replace(  # a format template, as DECK_FILE: braces doubled
    'header_value: Bearer ${{{{ env "DECK_OPENAI_API_KEY" }}}}',
    'header_value: "{{vault://env/openai-auth-header}}"',
)


class VaultLockgate(Lockgate):
    def env(self) -> dict[str, str]:
        return {**super().env(), "OPENAI_AUTH_HEADER": f"Bearer {UPSTREAM_KEY}"}


@pytest.fixture
def gateway(tmp_path: Path) -> Iterator[Lockgate]:
    lg = VaultLockgate(data_dir=tmp_path / "data", log_path=tmp_path / "lockgate.log")
    lg.start()
    try:
        yield lg
    finally:
        lg.stop()


def test_walkthrough_with_the_provider_key_in_the_data_planes_environment(
    gateway: Lockgate, fake: FakeOpenAI, tmp_path: Path
) -> None:
    deck_text = VAULT_DECK.format(upstream=fake.url)
    assert f'header_value: "{REFERENCE}"' in deck_text and "DECK_" not in deck_text
    deck_file = tmp_path / "kong.yaml"
    deck_file.write_text(deck_text)
    synced = deck(gateway, "sync", str(deck_file))
    assert synced.returncode == 0, synced.stderr + synced.stdout
    gateway.wait_ready()

    check_walkthrough(gateway, fake, tmp_path)  # the fake saw "Bearer <UPSTREAM_KEY>"

    plugins = httpx.get(
        f"{gateway.admin_url}/plugins", headers={"Kong-Admin-Token": ADMIN_TOKEN}, timeout=5
    ).json()["data"]
    (ai,) = [p for p in plugins if p["name"] == "ai-proxy-advanced"]
    assert ai["config"]["targets"][0]["auth"]["header_value"] == REFERENCE
    dumped = deck(gateway, "dump", "-o", "-")
    assert dumped.returncode == 0, dumped.stderr
    assert REFERENCE in dumped.stdout
    assert UPSTREAM_KEY not in dumped.stdout
    for path in (tmp_path / "data").rglob("*.db*"):
        assert UPSTREAM_KEY.encode() not in path.read_bytes(), path
    assert node_status(gateway) == ([], 0)


def node_status(lg: Lockgate) -> tuple[list[str], float]:
    """The data plane's unresolved references (`/status`) and their count (`/metrics`)."""
    status = httpx.get(f"{lg.status_url}/status", timeout=5).json()
    metrics = scrape(f"{lg.status_url}/metrics")
    return status["unresolved_vault_references"], metrics["lockgate_unresolved_vault_references"]


def test_a_reference_without_a_value_fails_its_route_and_shows_on_the_node(
    gateway: Lockgate, fake: FakeOpenAI, tmp_path: Path
) -> None:
    deck_file = tmp_path / "kong.yaml"
    missing = VAULT_DECK.replace("openai-auth-header", "missing-auth-header")
    deck_file.write_text(missing.format(upstream=fake.url))
    synced = deck(gateway, "sync", str(deck_file))
    assert synced.returncode == 0, synced.stderr + synced.stdout
    gateway.wait_ready()

    assert chat(gateway.proxy_url) == 500
    assert chat(gateway.proxy_url, key="wrong-key") == 401  # key-auth still answers first
    assert fake.requests == []  # nothing went out without its key
    (reason,), count = node_status(gateway)
    assert count == 1
    assert "config.targets[].auth.header_value: {vault://env/missing-auth-header}" in reason
    assert "environment variable MISSING_AUTH_HEADER is not set on this data plane" in reason
