"""`SqlStore`: the Store over SQLAlchemy Core (sync). SQLite now; PostgreSQL-ready.

SQLite notes: the stdlib driver's implicit transactions are disabled so SQLAlchemy's BEGIN
governs them (consistent multi-statement reads); write transactions use BEGIN IMMEDIATE so two
writers queue on the lock instead of failing to upgrade; WAL lets reads run during a write.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from sqlalchemy import Engine, create_engine, event, insert, select, update
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.pool import StaticPool

from control_plane.snapshot_builder import build_snapshot
from control_plane.store import tables
from control_plane.store.errors import ConflictError
from control_plane.store.events import ChangeEvent
from control_plane.store.protocol import Reader, Store, Writer
from control_plane.store.sql_tx import SqlTx
from gateway.context import ConsumerInfo, CredentialInfo
from gateway.credentials import CredentialMatch
from gateway.entities import Consumer, KeyAuthCredential
from gateway.snapshot import Snapshot

T = TypeVar("T")

_WRITE = "lockgate_write"


def open_store(database_url: str) -> Store:
    """Open (creating tables if missing) the store at `database_url`, e.g. `sqlite:///x.db`."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite":
        memory = url.database in (None, "", ":memory:")
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            poolclass=StaticPool if memory else None,
        )
        _configure_sqlite(engine)
    else:
        engine = create_engine(url, pool_pre_ping=True)
    store = SqlStore(engine)
    store.migrate()
    return store


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # let SQLAlchemy's BEGIN decide, not the driver
        cursor = dbapi_conn.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Any) -> None:
        immediate = conn.get_execution_options().get(_WRITE, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


class SqlStore:
    """The Store over one SQLAlchemy engine. Thread-safe: each call uses its own connection."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def migrate(self) -> None:
        """Create missing tables and the revision row (schema version 1)."""
        with self._engine.connect().execution_options(**{_WRITE: True}) as conn, conn.begin():
            tables.metadata.create_all(conn)
            if conn.scalar(select(tables.revision.c.value)) is None:
                conn.execute(insert(tables.revision).values(id=1, value=0))
            version = conn.scalar(select(tables.schema_meta.c.version))
            if version is None:
                conn.execute(insert(tables.schema_meta).values(id=1, version=tables.SCHEMA_VERSION))
            elif version > tables.SCHEMA_VERSION:
                raise RuntimeError(
                    f"the database has schema version {version}; this Lockgate knows up to "
                    f"{tables.SCHEMA_VERSION}: upgrade Lockgate"
                )

    def revision(self) -> int:
        return self.read(lambda r: r.revision())

    def snapshot(self) -> Snapshot:
        return self.read(build_snapshot)

    def lookup_credential(self, key_hash: str) -> CredentialMatch | None:
        return self.read(lambda r: _credential_match(r, key_hash))

    def read(self, fn: Callable[[Reader], T]) -> T:
        with self._engine.connect() as conn, conn.begin():
            return fn(SqlTx(conn))

    def write(self, fn: Callable[[Writer], T]) -> tuple[T, ChangeEvent | None]:
        try:
            connection = self._engine.connect().execution_options(**{_WRITE: True})
            with connection as conn, conn.begin() as txn:
                tx = SqlTx(conn)
                result = fn(tx)
                if not tx.changed():
                    txn.rollback()
                    return result, None
                conn.execute(
                    update(tables.revision)
                    .where(tables.revision.c.id == 1)
                    .values(value=tables.revision.c.value + 1)
                )
                event_ = ChangeEvent(
                    revision=tx.revision(),
                    key_hashes=frozenset(tx.key_hashes),
                    consumer_ids=frozenset(tx.consumer_ids),
                )
        except IntegrityError as exc:
            raise ConflictError(str(exc.orig)) from exc
        return result, event_

    def close(self) -> None:
        self._engine.dispose()


def _credential_match(reader: Reader, key_hash: str) -> CredentialMatch | None:
    cred = reader.find(KeyAuthCredential, "key_hash", key_hash)
    if cred is None or (cred.expires_at is not None and cred.expires_at <= time.time()):
        return None
    consumer = reader.get(Consumer, cred.consumer.id)
    if consumer is None:
        return None
    return CredentialMatch(
        credential=CredentialInfo(id=cred.id, consumer_id=consumer.id),
        consumer=ConsumerInfo(
            id=consumer.id, username=consumer.username, custom_id=consumer.custom_id
        ),
        expires_at=None if cred.expires_at is None else float(cred.expires_at),
    )
