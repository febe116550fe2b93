"""The storage seam: what the Admin API, the declarative sync and the snapshot builder use.

`SqlStore` implements it over SQLAlchemy Core, on SQLite and PostgreSQL alike. Reads and writes
run inside a transaction whose view is consistent; every write transaction that changes config
bumps the revision exactly once, atomically with its changes, and records one audit entry per
entity created, updated or deleted (cascades included). Admin tokens and the audit log are not
config: writing them never moves the revision.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeVar

from control_plane.store.events import ChangeEvent
from gateway.credentials import CredentialMatch
from gateway.entities import Entity
from gateway.snapshot import Snapshot

E = TypeVar("E", bound=Entity)
T = TypeVar("T")

Where = Mapping[str, str | None]
"""Column equality filters, e.g. `{"service_id": "<uuid>"}`."""

Role = Literal["admin", "editor", "viewer"]
ROLES: tuple[Role, ...] = ("admin", "editor", "viewer")
Action = Literal["create", "update", "delete"]


@dataclass(frozen=True, slots=True)
class AdminToken:
    """An Admin API token. Only the hash of the token is stored; times are epoch seconds."""

    id: str
    name: str
    role: Role
    token_hash: str
    created_at: int
    last_used_at: int | None
    expires_at: int | None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One audited change.

    `entity` is the table: "services", "routes", "consumers", "keyauth_credentials", "plugins"
    or "admin_tokens". `diff` is `{"before": {...} | None, "after": {...} | None}` (whole
    entities, secrets replaced by "[redacted]", see control_plane.store.redact); `at` is epoch
    seconds (the same for every entry of one transaction).
    """

    id: str
    at: float
    actor: str
    action: Action
    entity: str
    entity_id: str | None
    entity_name: str | None
    diff: dict[str, Any]
    request_id: str | None


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

    def insert_many(self, entities: Sequence[Entity]) -> None:
        """Insert entities of one kind (in one statement) whose unique values and references
        the caller has already checked in this transaction: no per-row checks (a violation the
        database catches surfaces as ConflictError at commit or IntegrityError now). Audited,
        and tracked for the change event, like `insert`."""
        ...

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
    """The control plane's storage.

    Config (services, routes, consumers, credentials, plugins) changes only through `write`,
    which bumps the revision and audits each change. Admin tokens and the audit log are not
    config: creating, touching or revoking a token and pruning the log never move the
    revision (data planes have nothing to fetch); token creation and revocation are audited.
    """

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

    def write(
        self, fn: Callable[[Writer], T], *, actor: str = "system", request_id: str | None = None
    ) -> tuple[T, ChangeEvent | None]:
        """Run `fn` in one write transaction and commit it.

        If `fn` raises, nothing is written and the exception propagates. If `fn` wrote nothing,
        the transaction is rolled back and the event is None (the revision does not move).
        Otherwise the revision is bumped once, every entity change is recorded in the audit log
        under `actor` and `request_id` (in the same transaction), and the event describes the
        commit. Writers are serialized (SQLite: BEGIN IMMEDIATE; PostgreSQL: a row lock on the
        revision counter), so unique checks inside `fn` see every earlier commit.
        """
        ...

    def iter_credentials(
        self, batch_size: int = 1000
    ) -> Iterator[list[tuple[str, CredentialMatch]]]:
        """Every unexpired credential as (key_hash, match), in batches: for warming caches.

        Each batch is read in its own short transaction (keyset pagination), so the whole is not
        one snapshot: writes that land meanwhile are announced by their ChangeEvent.
        """
        ...

    # -- admin tokens: not config, so none of these moves the revision ----------------------

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
        """Store a new token (audited, without its hash). Raises UniqueViolation if `name`
        (or the hash) is taken, ValueError for a role outside ROLES."""
        ...

    def list_admin_tokens(self) -> list[AdminToken]:
        """Every token, expired ones included, oldest first."""
        ...

    def find_admin_token(self, token_hash: str) -> AdminToken | None:
        """The token with this hash; None if unknown or expired."""
        ...

    def touch_admin_token(self, token_id: str) -> None:
        """Set `last_used_at` to now. Not audited."""
        ...

    def revoke_admin_token(
        self, id_or_name: str, *, actor: str = "system", request_id: str | None = None
    ) -> bool:
        """Delete the token with this id or name (audited); False if there was none."""
        ...

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
        """Audit entries matching every given filter (`since <= at < until`), newest first:
        up to `size` of them (clamped to 1..1000) and the `offset` of the next page (None on
        the last page). Raises ValueError for an offset this store did not hand out."""
        ...

    def prune_audit(self, older_than: float) -> int:
        """Delete entries with `at < older_than` (retention); return how many."""
        ...

    def close(self) -> None: ...
