"""The credential lookup seam used by key-auth.

The data plane provides the real chain (in-process cache -> Redis -> control plane); tests use
`InMemoryCredentials`. Keys travel and are cached only as their SHA-256 hex digest.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Protocol

from gateway.context import ConsumerInfo, CredentialInfo


def hash_key(key: str) -> str:
    """SHA-256 hex digest of a key-auth key: how keys are stored, cached and looked up."""
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class CredentialMatch:
    credential: CredentialInfo
    consumer: ConsumerInfo
    expires_at: float | None = None
    """Epoch seconds when the credential expires (its `ttl`), or None."""

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (now or time.time()) >= self.expires_at


class CredentialLookup(Protocol):
    async def lookup(self, key_hash: str) -> CredentialMatch | None:
        """The credential whose key hashes to `key_hash`, or None if there is none.

        Raises `CredentialLookupError` when the answer cannot be known (backends down).
        """
        ...


class CredentialLookupError(Exception):
    """No backend could answer a lookup."""


class InMemoryCredentials:
    """A CredentialLookup over a dict: the fake for tests."""

    def __init__(self) -> None:
        self._by_hash: dict[str, CredentialMatch] = {}

    def add(self, key: str, match: CredentialMatch) -> None:
        self._by_hash[hash_key(key)] = match

    async def lookup(self, key_hash: str) -> CredentialMatch | None:
        match = self._by_hash.get(key_hash)
        if match is None or match.expired():
            return None
        return match
