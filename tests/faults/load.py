"""Steady, bounded load for the fault and soak tests: worker threads send requests at a fixed
total rate, spread over one or more proxy URLs (two data planes), and count every outcome.

A client that cannot reach a data plane (connection refused, reset, closed before an answer)
retries as the OpenAI SDK does by default: up to two retries, after 0.5 s and then 1 s (less up
to a quarter of jitter), each against the next URL (with one URL, the same shared port, where the
kernel hands the new connection to a live node). A request counts as failed when, after its
retries, it has no answer or an answer with an unexpected status.

Why the pause matters: a client that reconnects within microseconds of a node's death can land
in the dying node's accept queue, which the kernel resets as the process's sockets close, unless
`net.ipv4.tcp_migrate_req=1` hands queued connections to the other nodes (docs/operations.md).
Measured on the 2-core machine under CPU load: the immediate retry failed 1 run in 12 with the
setting off and 0 in 20 with it on."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import httpx

#: Errors after which a client may safely try the other data plane: the request was not
#: answered (the other end vanished or refused), so it is resent as a whole.
RETRYABLE = (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)

#: The OpenAI SDK's defaults (openai/_constants.py): retries, and the first retry's delay, which
#: doubles on each retry up to the maximum.
MAX_RETRIES = 2
INITIAL_RETRY_DELAY_S = 0.5
MAX_RETRY_DELAY_S = 8.0


def retry_delay_s(retry: int) -> float:
    """The pause before retry number `retry` (0-based), with the SDK's jitter (up to -25 %)."""
    return min(INITIAL_RETRY_DELAY_S * 2.0**retry, MAX_RETRY_DELAY_S) * (1 - 0.25 * random.random())


@dataclass(frozen=True)
class Failure:
    at_s: float
    """Seconds since the load started."""
    url: str
    outcome: str
    """The unexpected status (`"503"`) or the exception's type and message."""


@dataclass
class LoadReport:
    sent: int = 0
    ok: int = 0
    retried: int = 0
    statuses: Counter[str] = field(default_factory=Counter)
    failures: list[Failure] = field(default_factory=list)
    latencies_ms: list[float] = field(default_factory=list)
    duration_s: float = 0.0

    @property
    def failed(self) -> int:
        return self.sent - self.ok

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return 0.0
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]

    def summary(self) -> str:
        first = "; ".join(f"{f.at_s:.2f}s {f.url} {f.outcome}" for f in self.failures[:8])
        return (
            f"{self.sent} sent in {self.duration_s:.1f} s, {self.ok} ok, {self.failed} failed, "
            f"{self.retried} retries, statuses {dict(self.statuses)}, "
            f"p50 {self.percentile_ms(0.5):.1f} ms, p99 {self.percentile_ms(0.99):.1f} ms"
            + (f"; first failures: {first}" if first else "")
        )


class SteadyLoad:
    """`with SteadyLoad(...) as load: ...; report = load.report` — or start()/stop()."""

    def __init__(
        self,
        urls: Sequence[str],
        *,
        path: str = "/",
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        body: bytes | None = None,
        rate_per_s: float = 50.0,
        workers: int = 4,
        expect: Callable[[int], bool] = lambda status: status == 200,
        max_requests: int = 100_000,
        timeout_s: float = 10.0,
        headers_for: Callable[[int], Mapping[str, str]] | None = None,
    ) -> None:
        assert urls, "at least one proxy URL"
        self.urls = list(urls)
        self.path = path
        self.method = method
        self.headers = dict(headers or {})
        self.body = body
        self.interval_s = workers / rate_per_s
        self.workers = workers
        self.expect = expect
        self.max_requests = max_requests
        self.timeout_s = timeout_s
        self.headers_for = headers_for
        """Extra headers of request number n (0, 1, ...), over `headers`: e.g. a key per
        request, taken from a list the test may grow while the load runs."""
        self.report = LoadReport()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._started = 0.0

    def __enter__(self) -> SteadyLoad:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        self._started = time.monotonic()
        for n in range(self.workers):
            thread = threading.Thread(target=self._run, args=(n,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self) -> LoadReport:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.timeout_s * 2 + 5)
        self.report.duration_s = time.monotonic() - self._started
        return self.report

    def wait_requests(self, count: int, timeout_s: float = 30.0) -> None:
        """Until `count` more requests were answered as expected (the load is flowing)."""
        target = self.report.ok + count
        deadline = time.monotonic() + timeout_s
        while self.report.ok < target:
            assert time.monotonic() < deadline, f"load not flowing: {self.report.summary()}"
            time.sleep(0.05)

    def _run(self, worker: int) -> None:
        clients = [httpx.Client(base_url=url, timeout=self.timeout_s) for url in self.urls]
        next_at = time.monotonic() + worker * self.interval_s / self.workers
        turn = worker
        try:
            while not self._stop.is_set():
                with self._lock:
                    if self.report.sent >= self.max_requests:
                        return
                    seq = self.report.sent
                    self.report.sent += 1
                first = turn % len(clients)
                turn += 1
                self._one(clients, first, self._headers(seq))
                next_at += self.interval_s
                delay = next_at - time.monotonic()
                if delay > 0:
                    self._stop.wait(delay)
                else:
                    next_at = time.monotonic()  # behind schedule: don't burst to catch up
        finally:
            for client in clients:
                client.close()

    def _headers(self, seq: int) -> dict[str, str]:
        if self.headers_for is None:
            return self.headers
        return {**self.headers, **self.headers_for(seq)}

    def _one(
        self, clients: list[httpx.Client], first: int, headers: Mapping[str, str] | None = None
    ) -> None:
        started = time.monotonic()
        for attempt in range(MAX_RETRIES + 1):
            index = (first + attempt) % len(clients)
            if attempt:
                with self._lock:
                    self.report.retried += 1
                time.sleep(retry_delay_s(attempt - 1))
            try:
                response = clients[index].request(
                    self.method,
                    self.path,
                    headers=self.headers if headers is None else headers,
                    content=self.body,
                )
            except RETRYABLE as exc:
                if attempt < MAX_RETRIES:
                    continue
                self._record(started, self.urls[index], f"{type(exc).__name__}: {exc}", ok=False)
                return
            except httpx.HTTPError as exc:  # a timeout: the request may have been handled
                self._record(started, self.urls[index], f"{type(exc).__name__}: {exc}", ok=False)
                return
            ok = self.expect(response.status_code)
            self._record(started, self.urls[index], str(response.status_code), ok=ok)
            return

    def _record(self, started: float, url: str, outcome: str, *, ok: bool) -> None:
        now = time.monotonic()
        with self._lock:
            self.report.statuses[outcome if outcome.isdigit() else "error"] += 1
            if ok:
                self.report.ok += 1
                self.report.latencies_ms.append((now - started) * 1000)
            else:
                self.report.failures.append(Failure(now - self._started, url, outcome))


def figures(name: str, report: LoadReport, **facts: float | int | str) -> str:
    """One line with the load's counts and the fault's recovery facts, printed for the record
    (`pytest -s tests/faults` shows them; docs/security.md quotes them)."""
    extra = ", ".join(
        f"{key} {value:.2f}" if isinstance(value, float) else f"{key} {value}"
        for key, value in facts.items()
    )
    line = (
        f"FAULT {name}: sent {report.sent}, ok {report.ok}, failed {report.failed}, "
        f"retried {report.retried}, p99 {report.percentile_ms(0.99):.0f} ms"
        + (f"; {extra}" if extra else "")
    )
    print(line)
    return line
