"""Per-minute aggregation on a data plane: grouping, histogram buckets, tokens and cost, minute
boundaries, what is pending until acknowledged, and the bounded buffer."""

from __future__ import annotations

from data_plane.analytics_sender import build_batch
from data_plane.analytics_window import (
    LATENCY_BOUNDS_MS,
    GroupKey,
    MinuteWindow,
    cost_nanos,
    status_class,
)

T0 = 1_700_000_040.0  # a minute start


class Clock:
    def __init__(self, now: float = T0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def key(status: int = 200, route: str = "chat", model: str = "") -> GroupKey:
    provider = "openai" if model else ""
    return ("r-" + route, route, "s-1", "svc", "", "", status, provider, model, "service")


def test_requests_are_counted_per_minute_and_group_with_their_latency_bucket() -> None:
    clock = Clock()
    window = MinuteWindow(clock=clock)
    for latency in (0.4, 1.0, 1.5, 250.0, 90_000.0):
        window.add(key(), latency)
    window.add(key(status=404), 3.0)
    clock.now += 59.9
    window.add(key(model="gpt-4o"), 700.0, prompt=10, completion=4, cost_nanos=cost_nanos(0.00021))
    clock.now += 0.1  # the next minute
    window.add(key(), 2.0)

    pending = window.pending()
    assert [minute for minute, _ in pending] == [T0, T0 + 60]
    first = pending[0][1]
    ok = first[key()]
    assert ok.requests == 5
    # bounds are inclusive upper bounds: 1.0 is in the first bucket, 90 s in the overflow
    assert ok.buckets[0] == 2 and ok.buckets[1] == 1 and ok.buckets[11] == 1
    assert ok.buckets[len(LATENCY_BOUNDS_MS)] == 1 and sum(ok.buckets) == 5
    assert ok.latency_sum_ms == 0.4 + 1.0 + 1.5 + 250.0 + 90_000.0
    assert first[key(status=404)].requests == 1
    llm = first[key(model="gpt-4o")]
    assert (llm.prompt_tokens, llm.completion_tokens, llm.cost_nanos) == (10, 4, 210_000)
    assert pending[1][1][key()].requests == 1


def test_status_codes_collapse_into_classes_in_the_batch() -> None:
    window = MinuteWindow(clock=Clock())
    window.add(key(200), 1)
    window.add(key(201), 1)
    window.add(key(404), 1)
    window.add(key(499), 1)
    by_kong: GroupKey = (*key(404)[:9], "kong")
    window.add(by_kong, 1)  # the same group for analytics: the source is no dimension
    batch = build_batch("node-1", "i-1", 7, window.pending())
    assert (batch.node_id, batch.instance_id, batch.seq) == ("node-1", "i-1", 7)
    assert list(batch.latency_bounds_ms) == list(LATENCY_BOUNDS_MS)
    (minute,) = batch.minutes
    assert minute.minute == T0
    assert sorted((g.status_class, g.requests) for g in minute.groups) == [("2xx", 2), ("4xx", 3)]
    assert status_class(503) == "5xx"


def test_cost_is_kept_in_integer_nano_units_so_sums_are_exact() -> None:
    costs = [0.1, 0.2, 0.000255, 1e-9, 0.3]
    assert sum(cost_nanos(c) for c in costs) == 600_255_001
    assert sum(costs) != 0.600255001  # what float addition would have given


def test_a_minute_is_pending_until_acknowledged_and_forgotten_once_ended() -> None:
    clock = Clock()
    window = MinuteWindow(clock=clock)
    window.add(key(), 1)
    sent = window.pending()
    window.add(key(), 1)  # counted while the batch was in flight
    window.acknowledged(sent)
    (again,) = window.pending()  # the running minute changed since: sent again, whole
    assert again[1][key()].requests == 2
    window.acknowledged([again])
    assert window.pending() == []
    assert window.minutes == 1  # the running minute is kept: more requests may come
    clock.now += 60
    window.add(key(), 1)
    window.acknowledged(window.pending())
    assert window.minutes == 1  # the ended, acknowledged minute is gone


def test_the_buffer_is_bounded_and_reports_what_it_dropped() -> None:
    clock = Clock()
    window = MinuteWindow(clock=clock, max_minutes=3)
    for i in range(5):
        for _ in range(i + 1):
            window.add(key(), 1)
        clock.now += 60
    assert [m for m, _ in window.pending()] == [T0 + 120, T0 + 180, T0 + 240]
    assert window.pop_dropped() == [(int(T0), 1), (int(T0) + 60, 2)]
    assert window.pop_dropped() == []
    assert window.dropped_requests == 3
    assert window.unsent_requests() == 3 + 4 + 5


def test_a_clock_stepped_back_counts_into_the_newest_minute() -> None:
    clock = Clock(T0 + 60)
    window = MinuteWindow(clock=clock)
    window.add(key(), 1)
    clock.now = T0 + 5  # NTP stepped the clock back into the previous minute
    window.add(key(), 1)
    assert [(m, g[key()].requests) for m, g in window.pending()] == [(T0 + 60, 2)]
