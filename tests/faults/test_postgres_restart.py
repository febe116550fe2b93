"""PostgreSQL restarted under the control plane, with steady load and Admin API writes.

A control plane on its own PostgreSQL server and two data planes (real processes) serve the
walkthrough's pipeline (pre-function -> key-auth -> ai-proxy-advanced to a fake OpenAI) under
steady load, while a writer thread creates consumers with keys through the Admin API. The
database goes away for a few seconds and comes back on the same port and data directory, in two
ways: a fast shutdown (sessions cut, in-flight transactions rolled back) and kill -9 of every
PostgreSQL process (no shutdown checkpoint: the restart replays the WAL, as after a crash; the
server acknowledges a commit once its WAL is written). Then:

- no proxied request failed: the data planes serve from the config they hold;
- every write the Admin API acknowledged (2xx) exists afterwards: nothing acknowledged is lost;
- every write refused during the outage got a 503 with a JSON message, within a bound;
- the control plane recovers by itself (same process) and a new write after the restart — a
  route and a consumer's key — is served by both data planes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.e2e.sync_procs import HEADERS, cluster_at
from tests.fakes.openai_server import FakeOpenAI
from tests.faults.planes import Planes
from tests.faults.walkthrough import walkthrough_load
from tests.services.postgres import PostgresServer, running_postgres

pytestmark = pytest.mark.e2e

DOWN_S = 3.0
"""How long the database stays down."""
WRITE_BOUND_S = 10.0
"""A refused write must be answered within this (no hang while the database is away)."""
RECOVERY_BOUND_S = 15.0
"""From the database accepting queries again to the first acknowledged write."""
LOAD_RATE = 30.0
WRITE_INTERVAL_S = 0.1
MAX_WRITES = 2000


@dataclass(frozen=True)
class Write:
    what: str
    """`consumer <name>` or `key <name>`."""
    started_s: float
    elapsed_s: float
    status: int
    """0: no answer (connection error or timeout)."""
    body: str

    @property
    def acknowledged(self) -> bool:
        return 200 <= self.status < 300


@dataclass
class AdminWriter:
    """Creates consumer `w<n>`, then its key `w<n>-key`, every WRITE_INTERVAL_S, until stopped;
    records every answer."""

    admin_url: str
    origin: float
    writes: list[Write] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        assert self._thread is not None
        self._thread.join(timeout=WRITE_BOUND_S * 2 + 5)
        assert not self._thread.is_alive(), "the writer hung"

    def acknowledged(self) -> list[Write]:
        return [w for w in list(self.writes) if w.acknowledged]

    def _run(self) -> None:
        with httpx.Client(base_url=self.admin_url, headers=HEADERS, timeout=WRITE_BOUND_S) as c:
            n = 0
            while not self._stop.is_set() and n < MAX_WRITES:
                n += 1
                name = f"w{n}"
                if self._post(c, f"consumer {name}", "/consumers", {"username": name}):
                    self._post(
                        c, f"key {name}", f"/consumers/{name}/key-auth", {"key": f"{name}-key"}
                    )
                self._stop.wait(WRITE_INTERVAL_S)

    def _post(self, client: httpx.Client, what: str, path: str, body: dict[str, str]) -> bool:
        started = time.monotonic()
        try:
            reply = client.post(path, json=body)
            status, text = reply.status_code, reply.text
        except httpx.HTTPError as exc:
            status, text = 0, f"{type(exc).__name__}: {exc}"
        write = Write(what, started - self.origin, time.monotonic() - started, status, text)
        self.writes.append(write)
        return write.acknowledged


@pytest.fixture
def own_postgres() -> Iterator[PostgresServer]:
    """A PostgreSQL server of this test alone (the session's one is shared), with commits
    acknowledged only once written, as in production."""
    with running_postgres(durable_commits=True) as server:
        yield server


@pytest.fixture
def pg_planes(
    tmp_path: Path, own_postgres: PostgresServer, fake_openai: FakeOpenAI
) -> Iterator[Planes]:
    with cluster_at(tmp_path, own_postgres.url(own_postgres.create_database())) as procs:
        yield Planes.start(procs, fake_openai.url)


@pytest.mark.parametrize("outage", ["fast shutdown", "kill -9"])
def test_postgres_restart_loses_no_acknowledged_write(
    pg_planes: Planes, own_postgres: PostgresServer, outage: str
) -> None:
    planes = pg_planes
    planes.add_consumer("client", "client-key")
    assert planes.chat_statuses("client-key") == [200, 200]
    cp_pid = planes.cp.proc.pid if planes.cp.proc else 0
    origin = time.monotonic()
    writer = AdminWriter(planes.cp.admin_url, origin)
    load = walkthrough_load(planes.urls, rate_per_s=LOAD_RATE, key="client-key")
    with load:
        writer.start()
        try:
            load.wait_requests(30)
            deadline = time.monotonic() + 20
            while len(writer.acknowledged()) < 6:
                assert time.monotonic() < deadline, f"writes not flowing: {writer.writes[-3:]}"
                time.sleep(0.05)
            down_at = time.monotonic() - origin
            if outage == "kill -9":
                own_postgres.kill()
                time.sleep(DOWN_S)
                own_postgres.start_again()
            else:
                own_postgres.restart(down_s=DOWN_S)
            up_at = time.monotonic() - origin
            deadline = time.monotonic() + RECOVERY_BOUND_S
            while not [w for w in writer.acknowledged() if w.started_s > up_at]:
                assert time.monotonic() < deadline, (
                    f"no write acknowledged {RECOVERY_BOUND_S} s after the restart: "
                    f"{writer.writes[-3:]}"
                )
                time.sleep(0.05)
            recovered_at = min(
                w.started_s + w.elapsed_s for w in writer.acknowledged() if w.started_s > up_at
            )
            load.wait_requests(30)
        finally:
            writer.stop()
    report = load.report
    writes = list(writer.writes)
    acked = [w for w in writes if w.acknowledged]
    refused = [w for w in writes if not w.acknowledged]
    print(
        f"\n{outage}: load: {report.summary()}\n"
        f"writes: {len(writes)} sent, {len(acked)} acknowledged, "
        f"{len(refused)} refused (slowest refusal "
        f"{max((w.elapsed_s for w in refused), default=0):.2f} s); "
        f"database down {down_at:.2f}-{up_at:.2f} s, first write "
        f"acknowledged after the restart at {recovered_at:.2f} s "
        f"({recovered_at - up_at:.2f} s after the database was back)"
    )

    if outage == "kill -9":  # a crash for PostgreSQL: it replayed its WAL to come back
        log = (own_postgres.root / "postgres.log").read_text(errors="replace")
        assert "automatic recovery in progress" in log, log[-2000:]

    # The data planes served every request from their config.
    assert report.failed == 0, report.summary()
    # The outage was seen by the writer, and every refusal was a clear, bounded 5xx.
    assert refused, "no write was refused: the database outage was not exercised"
    for write in refused:
        assert write.status == 503, write
        assert write.elapsed_s < WRITE_BOUND_S, write
        body = httpx.Response(write.status, content=write.body).json()
        assert body == {"message": "The database is unavailable; retry the request"}, write

    # Nothing acknowledged is lost.
    lost = []
    for write in acked:
        kind, name = write.what.split()
        if kind == "consumer":
            found = planes.cp.api("GET", f"/consumers/{name}").status_code == 200
        else:  # stored under its consumer, and it opens the route on both data planes
            keys = planes.cp.api("GET", f"/consumers/{name}/key-auth").json()["data"]
            found = [k["id"] for k in keys] == [json.loads(write.body)["id"]]
            found = found and planes.chat_statuses(f"{name}-key") == [200, 200]
        if not found:
            lost.append(write)
    assert not lost, lost
    print(f"lost: {len(lost)} of {len(acked)} acknowledged writes")

    # The same control plane recovered; a new config write and a new key reach both planes.
    assert planes.cp.alive() and planes.cp.proc is not None
    assert planes.cp.proc.pid == cp_pid
    route, _ = planes.add_route("after")
    planes.wait_in_sync()
    planes.add_consumer("after", "after-key")
    assert planes.chat_statuses("after-key", route) == [200, 200]
    # A key whose creation was refused does not open anything.
    refused_key = next(w.what.split()[1] for w in refused if w.what.startswith("consumer"))
    assert planes.chat_statuses(f"{refused_key}-key") == [401, 401]
