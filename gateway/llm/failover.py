"""When a failed attempt at one LLM target is retried on another, and when it counts against the
target's health (Kong ai-proxy-advanced `balancer.failover_criteria`, nginx
`proxy_next_upstream` semantics).

Retry rule. A failure is retried only if its criterion is listed: `error`, `timeout`,
`invalid_header`, or `http_<status>` for the statuses Kong names (403, 404, 429, 500, 502, 503,
504). As in nginx and Kong, a request with a non-idempotent method (POST, PATCH, LOCK) that may
have reached the upstream is retried only when `non_idempotent` is listed too. LLM calls are
POSTs, so Lockgate follows Kong: with the default criteria (`error`, `timeout`) only failures
where nothing was sent (refused connection, connect timeout) fail over; add `non_idempotent` to
fail over on read timeouts and HTTP statuses. A request is never sent twice to the same target
in one client request, and at most `retries` extra attempts are made.

Health rule (circuit breaker). `error`, `timeout` and `invalid_header` always count as
failures, listed or not; `http_403` and `http_404` never do; other statuses count when their
criterion is listed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from gateway.plugins.base import UpstreamFailure

NON_IDEMPOTENT_METHODS = frozenset({"POST", "PATCH", "LOCK"})
_STATUS_CRITERIA = {status: f"http_{status}" for status in (403, 404, 429, 500, 502, 503, 504)}
_NEVER_UNHEALTHY = frozenset({403, 404})


@dataclass(frozen=True, slots=True)
class FailoverPolicy:
    """The compiled `failover_criteria` and `retries` of one balancer."""

    retries: int
    criteria: frozenset[str]

    @classmethod
    def of(cls, retries: int, criteria: Iterable[str]) -> FailoverPolicy:
        return cls(retries, frozenset(criteria))

    def criterion(self, failure: UpstreamFailure) -> str | None:
        """The `failover_criteria` word describing `failure`, or None if none does."""
        if failure.kind == "status":
            return _STATUS_CRITERIA.get(failure.status)
        return failure.kind

    def should_retry(self, failure: UpstreamFailure, method: str, attempts: int) -> bool:
        """Whether to try another target after `attempts` attempts ended with `failure`."""
        if attempts > self.retries:
            return False
        criterion = self.criterion(failure)
        if criterion is None or criterion not in self.criteria:
            return False
        if failure.sent and method.upper() in NON_IDEMPOTENT_METHODS:
            return "non_idempotent" in self.criteria
        return True

    def is_unhealthy(self, failure: UpstreamFailure) -> bool:
        """Whether `failure` counts toward the circuit breaker's `max_fails`."""
        if failure.kind != "status":
            return True
        if failure.status in _NEVER_UNHEALTHY:
            return False
        criterion = _STATUS_CRITERIA.get(failure.status)
        return criterion is not None and criterion in self.criteria

    def status_is_unhealthy(self, status: int) -> bool:
        """`is_unhealthy` for a response head with `status`."""
        return status >= 400 and self.is_unhealthy(UpstreamFailure("status", status))
