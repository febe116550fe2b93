"""The storage seam: what the Admin API, the declarative sync and the snapshot builder use.

`SqlStore` implements it over SQLAlchemy Core (SQLite today; PostgreSQL is a dialect away).
Reads and writes run inside a transaction whose view is consistent; every write transaction
bumps the revision exactly once, atomically with its changes.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Protocol, TypeVar

from control_plane.store.events import ChangeEvent
from gateway.credentials import CredentialMatch
from gateway.entities import Entity
from gateway.snapshot import Snapshot

E = TypeVar("E", bound=Entity)
T = TypeVar("T")

Where = Mapping[str, str | None]
"""Column equality filters, e.g. `{"service_id": "<uuid>"}`."""


class Reader(Protocol):
    """Reads inside one transaction."""

    def revision(self) -> int:
        """The revision this transaction sees."""
        ...

    def get(self, model: type[E], entity_id: str) -> E | None:
        """The entity of kind `model` with this id, or None."""
        ...

    def find(self, model: type[E], column: str, value: str) -> E | None:
        """The entity whose unique or indexed `column` equals `value` (the first one), or None."""
        ...

    def all(self, model: type[E], where: Where | None = None) -> list[E]:
        """All entities of a kind matching `where`, in insertion order."""
        ...

    def page(
        self, model: type[E], where: Where | None, after: int | None, limit: int
    ) -> tuple[list[E], int | None]:
        """Up to `limit` entities after cursor `after`, and the next page's cursor (or None)."""
        ...


class Writer(Reader, Protocol):
    """Reads and writes inside one write transaction.

    Writes check unique values (raising UniqueViolation) and that foreign keys point at existing
    rows (raising ForeignKeyViolation); `delete` cascades like Kong (consumer -> credentials and
    plugins; route/service -> plugins) and refuses to delete a service that routes use.
    """

    def insert(self, entity: Entity) -> None: ...

    def update(self, entity: Entity) -> None:
        """Replace the stored entity with the same id (the caller built the full new value)."""
        ...

    def delete(self, model: type[Entity], entity_id: str, *, cascade: bool = True) -> None:
        """Delete one entity. `cascade=False` deletes only that row and skips the restricted
        check: for callers that delete every dependent row themselves in the same transaction
        (the database re-checks references at commit)."""
        ...

    def changed(self) -> bool:
        """Whether this transaction wrote anything yet."""
        ...


class Store(Protocol):
    def revision(self) -> int:
        """The latest committed revision (0 for an empty store)."""
        ...

    def snapshot(self) -> Snapshot:
        """The data-plane config at the latest revision (see control_plane.snapshot_builder)."""
        ...

    def lookup_credential(self, key_hash: str) -> CredentialMatch | None:
        """The key-auth credential with this key hash and its consumer; None if unknown or
        expired."""
        ...

    def read(self, fn: Callable[[Reader], T]) -> T:
        """Run `fn` in a read transaction and return its result."""
        ...

    def write(self, fn: Callable[[Writer], T]) -> tuple[T, ChangeEvent | None]:
        """Run `fn` in one write transaction and commit it.

        If `fn` raises, nothing is written and the exception propagates. If `fn` wrote nothing,
        the transaction is rolled back and the event is None (the revision does not move).
        Otherwise the revision is bumped once and the event describes the commit.
        """
        ...

    def close(self) -> None: ...
