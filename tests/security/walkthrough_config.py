"""The walkthrough's config for the secret-hiding tests, applied in-process: its decK file as a
`POST /config` document with chosen keys, and the data plane's credential lookup answered by
the control plane's store directly."""

from __future__ import annotations

import asyncio
from typing import Any

import yaml

from control_plane.store import Store
from gateway.credentials import CredentialMatch
from tests.e2e.test_walkthrough import CONSUMER_KEY as WALKTHROUGH_CONSUMER_KEY
from tests.e2e.test_walkthrough import DECK_FILE


class StoreCredentials:
    """The data plane's credential lookup, answered by the control plane's store directly."""

    def __init__(self, store: Store) -> None:
        self._store = store

    async def lookup(self, key_hash: str) -> CredentialMatch | None:
        return await asyncio.to_thread(self._store.lookup_credential, key_hash)


def walkthrough_document(
    upstream: str, provider_key: str, consumer_key: str = WALKTHROUGH_CONSUMER_KEY
) -> dict[str, Any]:
    """The decK file with its upstream at `upstream`, `provider_key` where `lockgate deck`
    substitutes `${{ env "DECK_OPENAI_API_KEY" }}`, and `consumer_key` as the consumer's key."""
    text = DECK_FILE.format(upstream=upstream)
    text = text.replace('${{ env "DECK_OPENAI_API_KEY" }}', provider_key)
    text = text.replace(WALKTHROUGH_CONSUMER_KEY, consumer_key)
    document: dict[str, Any] = yaml.safe_load(text)
    assert consumer_key in text and provider_key in text
    return document
