"""Each balancer algorithm's distribution, counted over many picks (deterministic: no wall
clock, seeded randomness)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from gateway.llm.balancer import PROBE_RATIO, BalancerSettings, LoadBalancer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def make(
    weights: list[int], algorithm: str = "round-robin", seed: int = 7, **settings: object
) -> LoadBalancer:
    keys = [f"t{i}" for i in range(len(weights))]
    return LoadBalancer(
        weights,
        keys,
        BalancerSettings(algorithm=algorithm, **settings),  # type: ignore[arg-type]
        clock=Clock(),
        rng=random.Random(seed),
    )


def picks(lb: LoadBalancer, n: int, key: str | None = None, release: bool = True) -> Counter[int]:
    counts: Counter[int] = Counter()
    for _ in range(n):
        index = lb.pick(key)
        assert index is not None
        counts[index] += 1
        if release:
            lb.release(index)
    return counts


def test_round_robin_weights_3_to_1_over_400_requests() -> None:
    counts = picks(make([3, 1]), 400)
    assert counts == {0: 300, 1: 100}


def test_round_robin_70_25_5() -> None:
    assert picks(make([70, 25, 5]), 1000) == {0: 700, 1: 250, 2: 50}


def test_round_robin_skips_excluded_targets() -> None:
    lb = make([1, 1, 1])
    seen = {lb.pick(exclude=[1]) for _ in range(10)}
    assert seen == {0, 2}
    assert lb.pick(exclude=[0, 1, 2]) is None


def test_priority_sends_everything_to_the_highest_group() -> None:
    lb = make([10, 10, 5, 1], algorithm="priority")
    assert picks(lb, 100) == {0: 50, 1: 50}


def test_priority_falls_to_the_next_group_only_when_a_whole_group_is_out() -> None:
    lb = make([10, 10, 5, 5, 1], algorithm="priority")
    assert lb.pick(exclude=[0]) == 1
    lb.release(1)
    assert {lb.pick(exclude=[0, 1]) for _ in range(4)} == {2, 3}
    assert lb.pick(exclude=[0, 1, 2, 3]) == 4


def test_least_connections_follows_spare_capacity() -> None:
    lb = make([2, 1], algorithm="least-connections")
    held = picks(lb, 300, release=False)
    # (inflight + 1) / weight stays balanced: twice as many in flight on the double weight.
    assert held == {0: 200, 1: 100}
    assert lb.inflight == [200, 100]
    for _ in range(150):
        lb.release(0)
    # target 0 now has 50 in flight (score 25.5) against 100 (score 101): it takes the next ones
    assert [lb.pick() for _ in range(3)] == [0, 0, 0]


def test_least_connections_ties_spread() -> None:
    lb = make([1, 1, 1], algorithm="least-connections")
    assert picks(lb, 300) == {0: 100, 1: 100, 2: 100}


def test_lowest_usage_balances_tokens_by_weight() -> None:
    lb = make([1, 1], algorithm="lowest-usage")
    counts: Counter[int] = Counter()
    for _ in range(200):
        index = lb.pick()
        assert index is not None
        counts[index] += 1
        lb.release(index)
        lb.record_usage(index, 30.0 if index == 0 else 10.0)  # target 0 answers 3x longer
    # Equal token totals mean three requests to target 1 for each one to target 0.
    assert counts == {0: 50, 1: 150}
    assert lb.usage == [1500.0, 1500.0]


def test_lowest_usage_prefers_unused_target() -> None:
    lb = make([1, 1, 1], algorithm="lowest-usage")
    lb.record_usage(0, 100)
    lb.record_usage(2, 50)
    assert [lb.pick() for _ in range(3)] == [1, 1, 1]


def test_lowest_latency_sends_most_traffic_to_the_fastest_with_probes() -> None:
    lb = make([1, 1, 1], algorithm="lowest-latency", seed=3)
    for index, latency in ((0, 0.50), (1, 0.05), (2, 0.20)):
        lb.record_latency(index, latency)
    counts = picks(lb, 10000)
    probes = counts[0] + counts[2]
    assert counts[1] > counts[0] + counts[2]
    # probes: PROBE_RATIO of the traffic, split among the others (binomial, seeded)
    assert 0.5 * PROBE_RATIO * 10000 < probes < 1.5 * PROBE_RATIO * 10000
    assert counts[0] > 0 and counts[2] > 0


def test_lowest_latency_tries_unmeasured_targets_first_and_follows_peaks() -> None:
    lb = make([1, 1], algorithm="lowest-latency")
    lb.record_latency(0, 0.1)
    assert lb.pick() == 1  # never measured
    lb.record_latency(1, 0.05)
    lb.record_latency(1, 0.9)  # a slow answer counts at once (peak EWMA)
    assert lb.latency[1] == 0.9
    clock = lb._clock
    assert isinstance(clock, Clock)
    clock.now += 10.0  # one time constant later a fast answer pulls the average down
    lb.record_latency(1, 0.01)
    latency = lb.latency[1]
    assert latency is not None and 0.3 < latency < 0.35


def test_consistent_hashing_is_sticky_and_spreads_keys() -> None:
    lb = make([1, 1, 1], algorithm="consistent-hashing")
    owners = {}
    for n in range(3000):
        key = f"user-{n}"
        first = lb.pick(key)
        assert all(lb.pick(key) == first for _ in range(3))
        owners[key] = first
    shares = Counter(owners.values())
    assert all(800 < shares[i] < 1200 for i in range(3)), shares


def test_consistent_hashing_weights_and_failover_only_moves_the_lost_keys() -> None:
    lb = make([3, 1], algorithm="consistent-hashing")
    owners = {f"k{n}": lb.pick(f"k{n}") for n in range(4000)}
    shares = Counter(owners.values())
    assert 2700 < shares[0] < 3300, shares
    lb3 = make([1, 1, 1], algorithm="consistent-hashing")
    before = {f"k{n}": lb3.pick(f"k{n}") for n in range(600)}
    after = {key: lb3.pick(key, exclude=[1]) for key in before}
    for key, owner in before.items():
        if owner != 1:
            assert after[key] == owner  # keys of healthy targets stay put
        else:
            assert after[key] in (0, 2)


def test_consistent_hashing_without_the_header_is_round_robin() -> None:
    assert picks(make([1, 1], algorithm="consistent-hashing"), 10) == {0: 5, 1: 5}


def test_invalid_balancer_inputs() -> None:
    with pytest.raises(ValueError):
        make([])
    with pytest.raises(ValueError):
        make([0, 1])
    with pytest.raises(KeyError):
        make([1], algorithm="semantic")
