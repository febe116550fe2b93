"""How key-auth credentials are stored in Redis, shared by the control plane (which writes them)
and the data planes (which read them, and write back what the control plane told them).

One string per key: `<prefix><key hash>` -> a compact JSON array
`[credential id, consumer id, username, custom id, expires_at]`, or `TOMBSTONE` for a key that
was deleted or rotated. Tombstones are what make data-plane write-backs safe: a data plane only
writes with `SET NX`, so an answer it got from the control plane just before a deletion can't
overwrite the deletion's tombstone and resurrect the key.
"""

from __future__ import annotations

import json

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from gateway.context import ConsumerInfo, CredentialInfo
from gateway.credentials import CredentialMatch

DEFAULT_PREFIX = "lockgate:cred:"
WARM_MARKER = "lockgate:cred-warm"
"""Set by the control plane when a bulk warm-up finished; its absence (Redis restarted, or the
marker expired) makes the control plane warm Redis again."""
TOMBSTONE = b"-"


def encode(match: CredentialMatch) -> bytes:
    """The Redis value for a credential and its consumer."""
    consumer = match.consumer
    return json.dumps(
        [
            match.credential.id,
            consumer.id,
            consumer.username,
            consumer.custom_id,
            match.expires_at,
        ],
        separators=(",", ":"),
    ).encode()


def decode(raw: bytes | str) -> CredentialMatch | None:
    """The credential a Redis value holds; None for a tombstone. ValueError if malformed."""
    if raw == TOMBSTONE or raw == "-":
        return None
    try:
        cred_id, consumer_id, username, custom_id, expires_at = json.loads(raw)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"malformed credential record: {raw[:80]!r}") from exc
    if not (isinstance(cred_id, str) and isinstance(consumer_id, str)):
        raise ValueError(f"malformed credential record: {raw[:80]!r}")
    return CredentialMatch(
        credential=CredentialInfo(cred_id, consumer_id),
        consumer=ConsumerInfo(consumer_id, username, custom_id),
        expires_at=None if expires_at is None else float(expires_at),
    )


def open_redis(url: str, *, timeout_s: float, max_connections: int = 64) -> aioredis.Redis:
    """A pooled asyncio Redis client that fails fast: every socket operation is bounded by
    `timeout_s` and nothing is retried (callers fall back to the control plane instead)."""
    client: aioredis.Redis = aioredis.Redis.from_url(
        url,
        socket_timeout=timeout_s,
        socket_connect_timeout=timeout_s,
        max_connections=max_connections,
        retry=Retry(NoBackoff(), 0),
        retry_on_timeout=False,
    )
    return client
