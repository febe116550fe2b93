"""Target selection for ai-proxy-advanced: Kong's balancer algorithms over targets 0..n-1.

`LoadBalancer` is the per-plugin-instance, per-process state: the algorithm, in-flight counts,
latency and usage statistics and the circuit breaker (`gateway.llm.health`). The plugin calls
`pick` in access (and again, excluding the targets already tried, on each retry), `release`
when an attempt ends, and feeds outcomes back with `record_*` from the response and log phases.

Algorithms (`balancer.algorithm`):

- round-robin: smooth weighted round-robin (nginx's): over every `sum(weights)` picks each
  target gets exactly `weight`, spread out rather than bunched.
- lowest-latency: the lowest peak-EWMA latency (a slower sample replaces the average at once,
  faster ones decay into it with a 10 s time constant). Targets never measured go first; a
  small share of traffic (`PROBE_RATIO`) goes to another target so a recovered one is noticed.
- lowest-usage: the lowest accumulated usage (tokens or cost) relative to weight.
- consistent-hashing: a hash ring of `slots` points spread by weight; the same header value
  always reaches the same target while it is available (the next one on the ring otherwise).
  Requests without the header are balanced round-robin.
- priority: targets of equal weight form a group, higher weight first; all traffic goes to the
  highest group with an available target (round-robin inside it).
- least-connections: the fewest in-flight requests relative to weight.

Ties are broken by rotating the starting target, so equal scores do not pile onto target 0.
Not thread-safe: one instance serves one event loop.
"""

from __future__ import annotations

import bisect
import hashlib
import math
import random
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from gateway.llm.health import CircuitBreaker

T = TypeVar("T")

PROBE_RATIO = 0.02
"""lowest-latency: share of requests sent to a target other than the fastest."""
DECAY_S = 10.0
"""lowest-latency: EWMA time constant (seconds), as Kong's latency balancer."""


class WeightedRoundRobin(Generic[T]):
    """Smooth weighted round-robin over fixed items (see the module doc)."""

    def __init__(self, items: Sequence[tuple[T, int]]) -> None:
        if not items:
            raise ValueError("at least one target is required")
        if any(weight < 1 for _, weight in items):
            raise ValueError("weights must be positive")
        self._items = [item for item, _ in items]
        self._rr = _SmoothRR([weight for _, weight in items])
        self._all = range(len(items))

    def pick(self) -> T:
        """The next item."""
        return self._items[self._rr.choose(self._all)]


class _SmoothRR:
    """nginx's smooth weighted round-robin over any subset of 0..n-1 (the subset may change
    between calls, as nginx skips peers that are down or already tried)."""

    __slots__ = ("_current", "_weights")

    def __init__(self, weights: Sequence[int]) -> None:
        self._weights = list(weights)
        self._current = [0] * len(weights)

    def choose(self, candidates: Sequence[int]) -> int:
        if len(candidates) == 1:
            return candidates[0]
        current, weights = self._current, self._weights
        best = candidates[0]
        total = 0
        for i in candidates:
            current[i] += weights[i]
            total += weights[i]
            if current[i] > current[best]:
                best = i
        current[best] -= total
        return best


@dataclass(frozen=True, slots=True)
class BalancerSettings:
    """The `balancer` config fields selection depends on (retries live in `FailoverPolicy`)."""

    algorithm: str = "round-robin"
    latency_strategy: str = "tpot"
    tokens_count_strategy: str = "total-tokens"
    hash_on_header: str = "X-Kong-LLM-Request-ID"
    slots: int = 10000
    max_fails: int = 0
    fail_timeout_ms: int = 10000


class LoadBalancer:
    """Selection state of one plugin instance's targets (see the module doc).

    `weights[i]` is target i's weight; `keys[i]` a stable name for it (consistent hashing
    places targets on the ring by name, so reordering targets does not remap clients).
    """

    def __init__(
        self,
        weights: Sequence[int],
        keys: Sequence[str],
        settings: BalancerSettings,
        *,
        clock: Callable[[], float],
        rng: random.Random | None = None,
    ) -> None:
        if not weights or len(weights) != len(keys) or min(weights) < 1:
            raise ValueError("one positive weight and one key per target are required")
        count = len(weights)
        self.settings = settings
        self._weights = list(weights)
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 (load spreading, not security)
        self._all = tuple(range(count))
        self._rr = _SmoothRR(weights)
        self._rotation = 0
        self.health = CircuitBreaker(
            count, settings.max_fails, settings.fail_timeout_ms / 1000, clock
        )
        self.inflight = [0] * count
        self.usage = [0.0] * count
        self.latency: list[float | None] = [None] * count
        self._touched = [0.0] * count
        self._choose = {
            "round-robin": self._round_robin,
            "lowest-latency": self._lowest_latency,
            "lowest-usage": self._lowest_usage,
            "consistent-hashing": self._hashed,
            "priority": self._priority,
            "least-connections": self._least_connections,
        }[settings.algorithm]
        groups: dict[int, list[int]] = {}
        for i, weight in enumerate(weights):
            groups.setdefault(weight, []).append(i)
        self._groups = [tuple(groups[w]) for w in sorted(groups, reverse=True)]
        self._ring_hashes: list[int] = []
        self._ring_owners: list[int] = []
        if settings.algorithm == "consistent-hashing":
            self._build_ring(keys, settings.slots)

    def pick(self, key: str | None = None, exclude: Collection[int] = ()) -> int | None:
        """Choose a target for one attempt and count it in flight; None if none is available
        (every target excluded or taken out by the circuit breaker). `key` is the
        consistent-hashing header value."""
        health = self.health
        if exclude or health.degraded:
            candidates: Sequence[int] = [
                i for i in self._all if i not in exclude and health.available(i)
            ]
            if not candidates:
                return None
        else:
            candidates = self._all
        chosen = self._choose(candidates, key)
        if health.degraded:
            health.acquire(chosen)
        self.inflight[chosen] += 1
        return chosen

    def release(self, index: int) -> None:
        """An attempt at `index` ended (whatever its outcome)."""
        if self.inflight[index] > 0:
            self.inflight[index] -= 1

    def record_failure(self, index: int) -> None:
        self.health.record_failure(index)

    def record_success(self, index: int) -> None:
        self.health.record_success(index)

    def record_latency(self, index: int, sample: float) -> None:
        """A finished answer's latency per `latency_strategy` (any unit, used consistently)."""
        now = self._clock()
        current = self.latency[index]
        if current is None or sample > current:
            self.latency[index] = sample  # peak EWMA: slowness is believed at once
        else:
            weight = math.exp(-max(0.0, now - self._touched[index]) / DECAY_S)
            self.latency[index] = current * weight + sample * (1.0 - weight)
        self._touched[index] = now

    def record_usage(self, index: int, amount: float) -> None:
        """Usage per `tokens_count_strategy` (tokens or cost) of a finished answer."""
        self.usage[index] += amount

    # --- algorithms: each gets a non-empty candidate list ---

    def _round_robin(self, candidates: Sequence[int], key: str | None) -> int:
        return self._rr.choose(candidates)

    def _priority(self, candidates: Sequence[int], key: str | None) -> int:
        for group in self._groups:
            members = [i for i in group if i in candidates]
            if members:
                return self._rr.choose(members)
        raise AssertionError("candidates is never empty")

    def _least_connections(self, candidates: Sequence[int], key: str | None) -> int:
        return self._lowest(candidates, self._connections_score)

    def _lowest_usage(self, candidates: Sequence[int], key: str | None) -> int:
        return self._lowest(candidates, self._usage_score)

    def _lowest_latency(self, candidates: Sequence[int], key: str | None) -> int:
        best = self._lowest(candidates, self._latency_score)
        if len(candidates) > 1 and self._rng.random() < PROBE_RATIO:
            others = [i for i in candidates if i != best]
            return others[self._rng.randrange(len(others))]
        return best

    def _hashed(self, candidates: Sequence[int], key: str | None) -> int:
        if key is None:
            return self._rr.choose(candidates)
        hashes, owners = self._ring_hashes, self._ring_owners
        start = bisect.bisect_left(hashes, _hash64(key))
        size = len(owners)
        for step in range(size):
            owner = owners[(start + step) % size]
            if owner in candidates:
                return owner
        raise AssertionError("every target owns at least one ring point")

    def _connections_score(self, i: int) -> float:
        return (self.inflight[i] + 1) / self._weights[i]

    def _usage_score(self, i: int) -> float:
        return self.usage[i] / self._weights[i]

    def _latency_score(self, i: int) -> float:
        return self.latency[i] or 0.0

    def _lowest(self, candidates: Sequence[int], score: Callable[[int], float]) -> int:
        # Start at a rotating offset so that ties spread instead of all going to the first.
        count = len(candidates)
        self._rotation = (self._rotation + 1) % count
        best = candidates[self._rotation]
        best_score = score(best)
        for step in range(1, count):
            i = candidates[(self._rotation + step) % count]
            value = score(i)
            if value < best_score:
                best, best_score = i, value
        return best

    def _build_ring(self, keys: Sequence[str], slots: int) -> None:
        total = sum(self._weights)
        points: list[tuple[int, int]] = []
        for i, (key, weight) in enumerate(zip(keys, self._weights, strict=True)):
            for n in range(max(1, slots * weight // total)):
                points.append((_hash64(f"{key}#{n}"), i))
        points.sort()
        self._ring_hashes = [h for h, _ in points]
        self._ring_owners = [i for _, i in points]


def _hash64(value: str) -> int:
    return int.from_bytes(hashlib.blake2b(value.encode(), digest_size=8).digest(), "big")
