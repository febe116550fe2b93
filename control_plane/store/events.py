"""What a committed write changed, for caches of derived state (snapshots, credentials)."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class ChangeEvent:
    """One committed write.

    `revision` is the store revision the write produced. `key_hashes` are the key-auth key hashes
    whose cached lookups (positive or negative) must be dropped: credentials created, updated or
    deleted, and the credentials of consumers updated or deleted. `consumer_ids` are the consumers
    updated or deleted, for caches indexed by consumer.
    """

    revision: int
    key_hashes: frozenset[str] = field(default_factory=frozenset)
    consumer_ids: frozenset[str] = field(default_factory=frozenset)
