"""`open_store`: which URLs it takes and what it does to a SQLite file.

The store's behaviour on both databases (CRUD, revisions, cascades, credentials, admin tokens,
audit, migrations) is the contract suite in tests/control_plane/store/.
"""

from __future__ import annotations

import sqlite3
import threading
from contextlib import closing
from pathlib import Path

import pytest

from control_plane.store import migrations, open_store
from control_plane.store.sql import create_store_engine
from gateway.entities import Service


def test_an_in_memory_store_works_across_threads() -> None:
    store = open_store("sqlite://")
    try:
        done: list[int] = []

        def write() -> None:
            _, event = store.write(lambda w: w.insert(Service(name="svc", host="h")))
            assert event is not None
            done.append(event.revision)

        thread = threading.Thread(target=write)
        thread.start()
        thread.join(30)
        assert done == [1]
        assert [s.name for s in store.read(lambda r: r.all(Service))] == ["svc"]
    finally:
        store.close()


def test_a_sqlite_file_is_created_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    open_store(f"sqlite:///{path}").close()
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_plain_postgresql_urls_use_psycopg_3() -> None:
    for url in ("postgresql://u@127.0.0.1:1/db", "postgres://u@127.0.0.1:1/db"):
        engine = create_store_engine(url)
        assert engine.dialect.driver == "psycopg"
        engine.dispose()


def test_an_unsupported_database_is_refused() -> None:
    with pytest.raises(ValueError, match="unsupported database 'mysql'"):
        open_store("mysql://u@127.0.0.1/db")


def test_a_failed_open_releases_the_database(tmp_path: Path) -> None:
    path = tmp_path / "x.db"
    open_store(f"sqlite:///{path}").close()
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("UPDATE alembic_version SET version_num = '0099'")
    with pytest.raises(RuntimeError, match="newer than this Lockgate"):
        open_store(f"sqlite:///{path}")
    with closing(sqlite3.connect(path, timeout=1)) as conn, conn:  # the refused open let go
        conn.execute(f"UPDATE alembic_version SET version_num = '{migrations.HEAD}'")
    open_store(f"sqlite:///{path}").close()
