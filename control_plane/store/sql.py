"""`SqlStore`: the Store over SQLAlchemy Core (sync), on SQLite or PostgreSQL.

SQLite: the stdlib driver's implicit transactions are disabled so SQLAlchemy's BEGIN governs
them (consistent multi-statement reads); write transactions use BEGIN IMMEDIATE so two writers
queue on the lock instead of failing to upgrade; WAL lets reads run during a write.

PostgreSQL (psycopg 3): reads run at REPEATABLE READ (one snapshot for the whole read); writes
run at READ COMMITTED and first lock the revision row (`SELECT ... FOR UPDATE`), which queues
writers one after another, so each sees every earlier commit when it checks unique values and
references, and each gets its own revision.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from control_plane.snapshot_builder import build_snapshot
from control_plane.store import (
    migrations,
    sql_admin,
    sql_audit,
    sql_credentials,
    sqlite_memory,
    tables,
)
from control_plane.store.errors import ConflictError, UniqueViolation
from control_plane.store.events import ChangeEvent
from control_plane.store.protocol import AdminToken, AuditEntry, Reader, Store, Writer
from control_plane.store.sql_tx import SqlTx
from gateway.credentials import CredentialMatch
from gateway.snapshot import Snapshot

T = TypeVar("T")

_WRITE = "lockgate_write"
_SQLITE_WAL_WAIT_S = 30.0
SQLITE_POOL_SIZE = 5
"""Connections to a SQLite file kept at most, and no overflow beyond them (a caller waits for
one instead): writes queue on SQLite's lock anyway, WAL readers are quick, and a fixed pool
keeps the process's database files and page caches bounded (docs/security.md, the soak)."""


def open_store(database_url: str) -> Store:
    """Open the store at `database_url` and migrate it to the newest schema.

    `sqlite:///path.db` (created if missing; `sqlite://` for in-memory) or
    `postgresql://user:pass@host/db` (`postgresql+psycopg://` too; the database must exist).
    Raises `migrations.SchemaTooNewError` for a database written by a newer Lockgate.
    """
    store = SqlStore(create_store_engine(database_url))
    try:
        store.migrate()
    except BaseException:
        store.close()
        raise
    return store


def create_store_engine(database_url: str) -> Engine:
    """The engine `open_store` uses, configured for its backend (no schema changes)."""
    url = make_url(database_url)
    backend = url.get_backend_name()
    if backend == "sqlite":
        memory = url.database in (None, "", ":memory:")
        pool: dict[str, Any] = (
            {"poolclass": StaticPool}
            if memory
            else {"pool_size": SQLITE_POOL_SIZE, "max_overflow": 0, "pool_timeout": 30}
        )
        engine = create_engine(
            url, connect_args={"check_same_thread": False, "timeout": 30}, **pool
        )
        _configure_sqlite(engine)
        return engine
    if backend in ("postgresql", "postgres"):
        if url.drivername in ("postgresql", "postgres"):
            url = url.set(drivername="postgresql+psycopg")  # psycopg 3, not the psycopg2 default
        return create_engine(url, pool_pre_ping=True)
    raise ValueError(f"unsupported database {url.drivername!r}: use sqlite:// or postgresql://")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN decide, not the driver
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA soft_heap_limit={sqlite_memory.SOFT_HEAP_LIMIT_BYTES}")
        _enable_wal(cursor)
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def _enable_wal(cursor: Any) -> None:
    """Switch the file to WAL (persistent: later connections find it done). The switch needs
    an exclusive lock and SQLite does not wait for it (no busy handler), so connections racing
    on a new file retry for a while instead of failing."""
    deadline = time.monotonic() + _SQLITE_WAL_WAIT_S
    while True:
        try:
            if str(cursor.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                cursor.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class SqlStore:
    """The Store over one SQLAlchemy engine. Thread-safe: each call uses its own connection."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"

    def migrate(self, target: str = "head") -> None:
        """Migrate the schema to `target` (see control_plane.store.migrations)."""
        with self._transaction(write=True) as conn:
            migrations.upgrade(conn, target)

    @contextmanager
    def _transaction(self, *, write: bool) -> Iterator[Connection]:
        """A connection inside a transaction that commits if the block returns normally."""
        with self._engine.connect() as conn:
            if write:
                conn.execution_options(**{_WRITE: True})
            elif self._postgres:
                conn.execution_options(isolation_level="REPEATABLE READ")
            with conn.begin():
                yield conn

    # -- config ------------------------------------------------------------------------------

    def revision(self) -> int:
        return self.read(lambda r: r.revision())

    def snapshot(self) -> Snapshot:
        return self.read(build_snapshot)

    def read(self, fn: Callable[[Reader], T]) -> T:
        with self._transaction(write=False) as conn:
            return fn(SqlTx(conn))

    def write(
        self, fn: Callable[[Writer], T], *, actor: str = "system", request_id: str | None = None
    ) -> tuple[T, ChangeEvent | None]:
        counter = tables.revision
        try:
            connection = self._engine.connect().execution_options(**{_WRITE: True})
            with connection as conn, conn.begin() as txn:
                if self._postgres:  # queue behind other writers (SQLite: BEGIN IMMEDIATE did)
                    conn.execute(select(counter.c.value).where(counter.c.id == 1).with_for_update())
                audit = sql_audit.AuditBatch(conn, actor, request_id)
                tx = SqlTx(conn, audit)
                result = fn(tx)
                if not tx.changed():
                    txn.rollback()
                    return result, None
                audit.flush()
                conn.execute(
                    update(counter).where(counter.c.id == 1).values(value=counter.c.value + 1)
                )
                event_ = ChangeEvent(
                    revision=tx.revision(),
                    key_hashes=frozenset(tx.key_hashes),
                    consumer_ids=frozenset(tx.consumer_ids),
                )
        except IntegrityError as exc:
            raise ConflictError(str(exc.orig)) from exc
        return result, event_

    # -- credentials -------------------------------------------------------------------------

    def lookup_credential(self, key_hash: str) -> CredentialMatch | None:
        with self._transaction(write=False) as conn:
            return sql_credentials.lookup(conn, key_hash, time.time())

    def iter_credentials(
        self, batch_size: int = 1000
    ) -> Iterator[list[tuple[str, CredentialMatch]]]:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        after: int | None = None
        while True:
            with self._transaction(write=False) as conn:
                found, after = sql_credentials.batch(conn, after, batch_size, time.time())
            if found:
                yield found
            if after is None:
                return

    # -- admin tokens (not config: the revision never moves) ---------------------------------

    def create_admin_token(
        self,
        name: str,
        role: str,
        token_hash: str,
        expires_at: int | None = None,
        *,
        actor: str = "system",
        request_id: str | None = None,
    ) -> AdminToken:
        try:
            with self._transaction(write=True) as conn:
                token, entry = sql_admin.create(conn, name, role, token_hash, expires_at)
                sql_audit.write_entries(conn, [entry], actor, request_id)
        except IntegrityError as exc:  # a concurrent create won the race (PostgreSQL)
            raise UniqueViolation({"name": name}) from exc
        return token

    def list_admin_tokens(self) -> list[AdminToken]:
        with self._transaction(write=False) as conn:
            return sql_admin.list_all(conn)

    def find_admin_token(self, token_hash: str) -> AdminToken | None:
        with self._transaction(write=False) as conn:
            return sql_admin.find(conn, token_hash, time.time())

    def touch_admin_token(self, token_id: str) -> None:
        with self._transaction(write=True) as conn:
            sql_admin.touch(conn, token_id, time.time())

    def revoke_admin_token(
        self, id_or_name: str, *, actor: str = "system", request_id: str | None = None
    ) -> bool:
        with self._transaction(write=True) as conn:
            entry = sql_admin.revoke(conn, id_or_name)
            if entry is not None:
                sql_audit.write_entries(conn, [entry], actor, request_id)
        return entry is not None

    # -- audit log ---------------------------------------------------------------------------

    def list_audit(
        self,
        *,
        actor: str | None = None,
        entity: str | None = None,
        action: str | None = None,
        since: float | None = None,
        until: float | None = None,
        size: int = 100,
        offset: str | None = None,
    ) -> tuple[list[AuditEntry], str | None]:
        with self._transaction(write=False) as conn:
            return sql_audit.list_entries(
                conn,
                actor=actor,
                entity=entity,
                action=action,
                since=since,
                until=until,
                size=size,
                offset=offset,
            )

    def prune_audit(self, older_than: float) -> int:
        with self._transaction(write=True) as conn:
            return sql_audit.prune(conn, older_than)

    def close(self) -> None:
        self._engine.dispose()
