"""The control plane's SQLite stays bounded however long it runs: its heap (page caches of
every pooled connection) under the process-wide soft limit, and its connections (so its open
database files) at the pool's fixed size, callers beyond it waiting instead of opening more.

Unbounded, each pooled connection may keep a 2 MiB page cache, and in the long soak the pool
opened overflow connections (database fds 7 -> 12; docs/security.md)."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from contextlib import closing
from pathlib import Path

from sqlalchemy import text

from control_plane.metrics import write_sqlite_memory
from control_plane.store import open_store, sqlite_memory
from control_plane.store.sql import SQLITE_POOL_SIZE, create_store_engine
from control_plane.store.sql_analytics import MinuteGroup, SqlAnalytics
from gateway.prometheus_text import Exposition

MIB = 1024 * 1024


def _database_fds(path: Path) -> int:
    count = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        count += target.startswith(str(path))
    return count


def _fill(path: Path, rows: int) -> None:
    """A table of `rows` x ~200 bytes (far more than every cache together) written directly."""
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE IF NOT EXISTS filler (id INTEGER PRIMARY KEY, v TEXT)")
        conn.executemany(
            "INSERT INTO filler (v) VALUES (?)", ((f"{n:0200d}",) for n in range(rows))
        )


def test_sqlite_heap_stays_under_the_soft_limit_with_every_pooled_connection_busy(
    tmp_path: Path,
) -> None:
    path = tmp_path / "lockgate.db"
    open_store(f"sqlite:///{path}").close()
    _fill(path, 60_000)  # ~13 MiB of pages: 5 default caches would hold 10 MiB of them
    engine = create_store_engine(f"sqlite:///{path}")
    try:
        before = sqlite_memory.memory_used()
        assert before is not None
        barrier = threading.Barrier(SQLITE_POOL_SIZE)
        sums: list[int] = []

        def scan() -> None:
            with engine.connect() as conn:
                barrier.wait(timeout=30)  # all connections open at once
                for _ in range(2):
                    sums.append(
                        int(conn.execute(text("SELECT sum(length(v)) FROM filler")).scalar_one())
                    )
                barrier.wait(timeout=30)

        threads = [threading.Thread(target=scan) for _ in range(SQLITE_POOL_SIZE)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert sums == [60_000 * 200] * (2 * SQLITE_POOL_SIZE)
        used = sqlite_memory.memory_used()
        assert used is not None
        # the limit, plus what one statement may need above it (SQLite overshoots by a little)
        assert used <= sqlite_memory.SOFT_HEAP_LIMIT_BYTES + MIB // 2, used / MIB
        # and the caches were really in use: the scans pulled pages in
        assert used > 2 * MIB, used / MIB
    finally:
        engine.dispose()


def test_without_the_limit_the_same_scans_take_a_cache_per_connection(tmp_path: Path) -> None:
    """The control: plain sqlite3 connections (default 2 MiB cache each) on the same data grow
    SQLite's heap past the limit, so the test above shows the limit at work."""
    path = tmp_path / "plain.db"
    _fill(path, 60_000)
    used_before = sqlite_memory.memory_used()
    assert used_before is not None
    conns = [sqlite3.connect(path) for _ in range(SQLITE_POOL_SIZE)]
    try:
        for conn in conns:
            conn.execute("PRAGMA soft_heap_limit=0")  # process-wide: lift it for the control
            conn.execute("SELECT sum(length(v)) FROM filler").fetchone()
        used = sqlite_memory.memory_used()
        assert used is not None
        assert used - used_before > sqlite_memory.SOFT_HEAP_LIMIT_BYTES + MIB, used / MIB
    finally:
        for conn in conns:
            conn.close()
        with closing(sqlite3.connect(":memory:")) as conn:  # put the process-wide limit back
            conn.execute(f"PRAGMA soft_heap_limit={sqlite_memory.SOFT_HEAP_LIMIT_BYTES}")


def test_the_pool_never_opens_more_connections_than_its_size(tmp_path: Path) -> None:
    path = tmp_path / "lockgate.db"
    store = open_store(f"sqlite:///{path}")
    analytics = SqlAnalytics.open(f"sqlite:///{path}")
    store.close()
    try:
        minute = int(time.time()) // 60 * 60
        peak = 0
        lock = threading.Lock()
        errors: list[BaseException] = []

        def report(node: int) -> None:
            nonlocal peak
            try:
                for seq in range(20):
                    groups = [
                        MinuteGroup(minute=minute, consumer=f"c{n}", requests=1) for n in range(50)
                    ]
                    analytics.upsert(f"node-{node}", "i", seq, groups)
                    with lock:
                        peak = max(peak, _database_fds(path))
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=report, args=(n,)) for n in range(3 * SQLITE_POOL_SIZE)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert errors == []  # the callers beyond the pool waited, none failed
        assert 0 < peak <= 2 * SQLITE_POOL_SIZE + 1  # database + WAL per connection, one -shm
        with closing(sqlite3.connect(path)) as conn:  # every report stored
            stored = conn.execute("SELECT count(*), sum(requests) FROM analytics_minutes")
            assert stored.fetchone() == (3 * SQLITE_POOL_SIZE * 50, 3 * SQLITE_POOL_SIZE * 50)
    finally:
        analytics.close()


def test_the_metric_reports_sqlite_memory(tmp_path: Path) -> None:
    _fill(tmp_path / "m.db", 1000)
    with closing(sqlite3.connect(tmp_path / "m.db")) as conn:
        assert conn.execute("SELECT count(*) FROM filler").fetchone() == (1000,)
        out = Exposition()
        write_sqlite_memory(out)
    lines = out.text().splitlines()
    assert lines[:2] == [
        "# HELP lockgate_sqlite_memory_bytes Memory SQLite has allocated",
        "# TYPE lockgate_sqlite_memory_bytes gauge",
    ]
    name, value = lines[2].split()
    assert name == "lockgate_sqlite_memory_bytes"
    now = sqlite_memory.memory_used()
    assert now is not None
    assert int(value) > 0 and abs(int(value) - now) < MIB
