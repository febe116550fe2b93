"""L2 of the key-auth lookup chain: Redis, shared by every data plane, behind a circuit breaker.

Redis is an accelerator, never a dependency: every call is bounded by a short timeout, and after
`failure_threshold` consecutive failures the breaker opens and Redis is skipped (lookups go
straight to the control plane) for `cooldown_s`; then one probe is let through, and its outcome
closes or re-opens the breaker. So a Redis that is down or slow costs at most a few timeouts,
not one per request.

The control plane writes every credential through to Redis (`control_plane.credential_cache`);
a data plane writes back only what the control plane answered for a key Redis didn't have, with
`SET NX` and a TTL (see `gateway.redis_credential_records` for why NX).
"""

from __future__ import annotations

import asyncio
import logging
import time

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from data_plane.credentials import SharedCacheUnavailable
from gateway.credentials import CredentialMatch
from gateway.redis_credential_records import DEFAULT_PREFIX, decode, encode

log = logging.getLogger("lockgate.dp.redis")


def _reraise_cancellation() -> None:
    # on Python 3.11 a cancellation racing a timeout can surface as TimeoutError: keep it one
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


class CircuitBreaker:
    """Closed -> open after `failure_threshold` consecutive failures -> after `cooldown_s`, one
    probe at a time (half-open) -> closed again on a success."""

    def __init__(self, *, failure_threshold: int = 3, cooldown_s: float = 5.0) -> None:
        self._threshold = failure_threshold
        self._cooldown_s = cooldown_s
        self._failures = 0
        self._open_until = 0.0

    @property
    def is_open(self) -> bool:
        return self._failures >= self._threshold

    def allow(self) -> bool:
        """Whether a call may go to the backend now."""
        if self._failures < self._threshold:
            return True
        now = time.monotonic()
        if now < self._open_until:
            return False
        self._open_until = now + self._cooldown_s  # this caller is the probe; others wait
        return True

    def success(self) -> None:
        if self._failures >= self._threshold:
            log.info("Redis is back: credential lookups use it again")
        self._failures = 0

    def failure(self) -> None:
        self._failures += 1
        if self._failures == self._threshold:
            log.warning(
                "Redis failed %d times in a row: skipping it for %.1f s",
                self._threshold,
                self._cooldown_s,
            )
        if self._failures >= self._threshold:
            self._open_until = time.monotonic() + self._cooldown_s


class RedisCredentials:
    """Reads credential records from Redis and writes back control-plane answers.

    `get` answers `(known, match)`: `(True, match)` for a record, `(True, None)` for a tombstone
    (the key was deleted), `(False, None)` when Redis has nothing for the key. It raises
    `SharedCacheUnavailable` when Redis can't answer in time or the breaker is open.
    """

    def __init__(
        self,
        client: aioredis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        timeout_s: float = 0.1,
        write_back_ttl_s: int = 300,
        breaker: CircuitBreaker | None = None,
        max_pending_writes: int = 1000,
    ) -> None:
        self._client = client
        self._prefix = prefix
        self._timeout_s = timeout_s
        self._write_back_ttl_s = write_back_ttl_s
        self.breaker = breaker or CircuitBreaker()
        self._max_pending = max_pending_writes
        self._pending: set[asyncio.Task[None]] = set()

    async def get(self, key_hash: str) -> tuple[bool, CredentialMatch | None]:
        if not self.breaker.allow():
            raise SharedCacheUnavailable("Redis circuit breaker is open")
        try:
            async with asyncio.timeout(self._timeout_s):
                raw = await self._client.get(self._prefix + key_hash)
        except (RedisError, OSError, TimeoutError) as exc:
            _reraise_cancellation()
            self.breaker.failure()
            raise SharedCacheUnavailable(f"Redis get failed: {exc!r}") from exc
        self.breaker.success()
        if raw is None:
            return False, None
        try:
            return True, decode(raw)
        except ValueError as exc:
            raise SharedCacheUnavailable(str(exc)) from exc

    def put(self, key_hash: str, match: CredentialMatch) -> None:
        """Write back a control-plane answer in the background (SET NX with a TTL).

        Best effort: skipped while the breaker is open or when too many writes are pending.
        """
        if len(self._pending) >= self._max_pending or self.breaker.is_open:
            return
        ttl = self._write_back_ttl_s
        if match.expires_at is not None:
            ttl = min(ttl, int(match.expires_at - time.time()))
            if ttl <= 0:
                return
        task = asyncio.ensure_future(self._put(self._prefix + key_hash, encode(match), ttl))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _put(self, key: str, value: bytes, ttl: int) -> None:
        try:
            async with asyncio.timeout(self._timeout_s):
                await self._client.set(key, value, ex=ttl, nx=True)
        except (RedisError, OSError, TimeoutError) as exc:
            self.breaker.failure()
            log.debug("Redis write-back failed: %r", exc)
        else:
            self.breaker.success()

    async def drain(self) -> None:
        """Wait for pending write-backs (tests, shutdown)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)

    async def close(self) -> None:
        """Finish pending write-backs and close the connection pool."""
        await self.drain()
        await self._client.aclose()
