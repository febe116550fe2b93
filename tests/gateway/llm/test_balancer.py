from __future__ import annotations

import pytest

from gateway.llm.balancer import WeightedRoundRobin


def test_smooth_weighted_order() -> None:
    rr = WeightedRoundRobin([("a", 5), ("b", 1), ("c", 1)])
    assert [rr.pick() for _ in range(7)] == ["a", "a", "b", "a", "c", "a", "a"]


def test_exact_shares_per_cycle() -> None:
    rr = WeightedRoundRobin([("a", 3), ("b", 2)])
    picks = [rr.pick() for _ in range(50)]
    assert (picks.count("a"), picks.count("b")) == (30, 20)


def test_single_and_invalid() -> None:
    assert WeightedRoundRobin([("only", 7)]).pick() == "only"
    with pytest.raises(ValueError):
        WeightedRoundRobin([])
    with pytest.raises(ValueError):
        WeightedRoundRobin([("a", 0)])
