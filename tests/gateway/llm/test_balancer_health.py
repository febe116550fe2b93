"""Circuit breaker (max_fails within fail_timeout) and failover criteria, on a controlled clock."""

from __future__ import annotations

import random

from gateway.llm.balancer import BalancerSettings, LoadBalancer
from gateway.llm.failover import FailoverPolicy
from gateway.llm.health import CircuitBreaker
from gateway.plugins.base import UpstreamFailure


class Clock:
    def __init__(self) -> None:
        self.now = 50.0

    def __call__(self) -> float:
        return self.now


def test_opens_after_max_fails_within_the_window_and_probes_back() -> None:
    clock = Clock()
    breaker = CircuitBreaker(2, max_fails=3, fail_timeout_s=10, clock=clock)
    breaker.record_failure(0)
    breaker.record_failure(0)
    assert breaker.state(0) == "closed" and breaker.available(0)
    breaker.record_failure(0)
    assert breaker.state(0) == "open" and not breaker.available(0)
    assert breaker.available(1)
    clock.now += 9.9
    assert not breaker.available(0)
    clock.now += 0.2
    assert breaker.state(0) == "half_open" and breaker.available(0)
    breaker.acquire(0)  # the probe is out: nobody else gets the target meanwhile
    assert not breaker.available(0)
    breaker.record_success(0)
    assert breaker.state(0) == "closed" and breaker.available(0)
    # failures were forgotten: it takes max_fails new ones to open again
    breaker.record_failure(0)
    breaker.record_failure(0)
    assert breaker.state(0) == "closed"


def test_failed_probe_reopens_for_another_period() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, max_fails=1, fail_timeout_s=5, clock=clock)
    breaker.record_failure(0)
    clock.now += 5
    breaker.acquire(0)
    breaker.record_failure(0)
    assert breaker.state(0) == "open"
    clock.now += 4.9
    assert not breaker.available(0)
    clock.now += 0.1
    assert breaker.available(0)


def test_probe_that_never_reports_stops_blocking_after_fail_timeout() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, max_fails=1, fail_timeout_s=5, clock=clock)
    breaker.record_failure(0)
    clock.now += 5
    breaker.acquire(0)
    clock.now += 4
    assert not breaker.available(0)
    clock.now += 1
    assert breaker.available(0)


def test_failures_are_a_total_in_a_sliding_window() -> None:
    clock = Clock()
    breaker = CircuitBreaker(1, max_fails=2, fail_timeout_s=10, clock=clock)
    breaker.record_failure(0)
    clock.now += 11  # the first failure left the window
    breaker.record_failure(0)
    assert breaker.state(0) == "closed"
    breaker.record_success(0)  # successes do not reset the count (not "consecutive")
    clock.now += 1
    breaker.record_failure(0)
    assert breaker.state(0) == "open"


def test_max_fails_zero_is_off() -> None:
    breaker = CircuitBreaker(1, max_fails=0, fail_timeout_s=10, clock=Clock())
    for _ in range(100):
        breaker.record_failure(0)
    assert breaker.available(0) and not breaker.enabled


def test_balancer_skips_open_targets_and_reports_none_when_all_are_open() -> None:
    clock = Clock()
    lb = LoadBalancer(
        [1, 1],
        ["a", "b"],
        BalancerSettings(max_fails=1, fail_timeout_ms=2000),
        clock=clock,
        rng=random.Random(1),
    )
    lb.record_failure(0)
    assert {lb.pick() for _ in range(4)} == {1}
    lb.record_failure(1)
    assert lb.pick() is None
    clock.now += 2
    assert lb.pick() in (0, 1)


def _status(code: int) -> UpstreamFailure:
    return UpstreamFailure("status", code)


def test_post_retries_on_statuses_only_with_non_idempotent() -> None:
    plain = FailoverPolicy.of(5, ["error", "timeout", "http_500"])
    assert not plain.should_retry(_status(500), "POST", 1)
    assert plain.should_retry(_status(500), "GET", 1)
    full = FailoverPolicy.of(5, ["error", "timeout", "http_500", "non_idempotent"])
    assert full.should_retry(_status(500), "POST", 1)
    assert not full.should_retry(_status(502), "POST", 1)  # not listed
    assert not full.should_retry(_status(401), "POST", 1)


def test_unsent_post_always_fails_over_on_error_and_timeout() -> None:
    policy = FailoverPolicy.of(5, ["error", "timeout"])
    assert policy.should_retry(UpstreamFailure("error", sent=False), "POST", 1)
    assert policy.should_retry(UpstreamFailure("timeout", sent=False), "POST", 1)
    assert not policy.should_retry(UpstreamFailure("timeout", sent=True), "POST", 1)
    assert not policy.should_retry(UpstreamFailure("invalid_header"), "GET", 1)


def test_retry_budget() -> None:
    policy = FailoverPolicy.of(2, ["error"])
    failure = UpstreamFailure("error", sent=False)
    assert policy.should_retry(failure, "POST", 2)
    assert not policy.should_retry(failure, "POST", 3)
    assert not FailoverPolicy.of(0, ["error"]).should_retry(failure, "POST", 1)


def test_what_counts_against_health() -> None:
    policy = FailoverPolicy.of(5, ["http_429", "http_403", "http_404"])
    assert policy.is_unhealthy(UpstreamFailure("error"))
    assert policy.is_unhealthy(UpstreamFailure("timeout"))
    assert policy.is_unhealthy(UpstreamFailure("invalid_header"))
    assert policy.is_unhealthy(_status(429))
    assert not policy.is_unhealthy(_status(500))  # not listed
    assert not policy.is_unhealthy(_status(403))  # never
    assert not policy.is_unhealthy(_status(404))
    assert not policy.status_is_unhealthy(200)
