"""`UserStore`: web UI users (argon2id password hashes) and their login sessions.

It runs on the store's SQLAlchemy engine (SQLite or PostgreSQL) beside `SqlStore`, in its own
short transactions. Users are not config: nothing here moves the revision. Creating, changing
and deleting a user is audited (entity "ui_users"; the password hash never reaches the log).

Sessions are server-side rows keyed by the SHA-256 of a random cookie value, so logout and
user deletion end them at once, and a copy of the database holds no usable session.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, delete, func, insert, select, update

from control_plane.store import sql_audit
from control_plane.store.errors import SchemaViolation, UniqueViolation, single
from control_plane.store.protocol import ROLES, Role
from control_plane.store.users_tables import ui_sessions, ui_users
from gateway.entities import NAME_RE

ENTITY = "ui_users"
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
"""Bounds argon2's input so a huge body cannot burn CPU."""

Clock = Callable[[], float]

# SqlStore's engine turns this execution option into BEGIN IMMEDIATE on SQLite, so writers
# queue on the lock instead of failing to upgrade a read lock.
_WRITE_OPTION = "lockgate_write"


@dataclass(frozen=True, slots=True)
class User:
    """A UI user as the app sees it: never the password hash."""

    id: str
    username: str
    role: Role
    created_at: int
    updated_at: int
    last_login_at: int | None


@dataclass(frozen=True, slots=True)
class Session:
    """A live login: who, until when, and the CSRF token its forms must echo."""

    user: User
    csrf_token: str
    created_at: int
    expires_at: int
    last_seen_at: int


def _user(row: Any) -> User:
    return User(
        id=row.id,
        username=row.username,
        role=cast(Role, row.role),
        created_at=int(row.created_at),
        updated_at=int(row.updated_at),
        last_login_at=None if row.last_login_at is None else int(row.last_login_at),
    )


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def check_username(username: str) -> None:
    """Raise SchemaViolation unless `username` is a 1-255 character Kong-style name."""
    if not 1 <= len(username) <= 255 or not NAME_RE.match(username):
        raise single(
            "username",
            "expected 1-255 characters: letters, digits, '.', '-', '_' or '~'",
        )


def check_password(password: str) -> None:
    """Raise SchemaViolation unless `password` has MIN_PASSWORD..MAX_PASSWORD characters."""
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise single("password", f"expected {MIN_PASSWORD} to {MAX_PASSWORD} characters")


def check_role(role: str) -> Role:
    if role not in ROLES:
        raise single("role", "expected one of: " + ", ".join(ROLES))
    return role


class UserStore:
    """UI users and sessions on `engine` (the one the config store uses).

    `hasher` defaults to argon2-cffi's recommended argon2id parameters (tests pass cheaper
    ones). Thread-safe; every method is blocking (call it off the event loop).
    """

    def __init__(
        self, engine: Engine, hasher: PasswordHasher | None = None, clock: Clock = time.time
    ) -> None:
        self._engine = engine
        self._hasher = hasher or PasswordHasher()
        self._clock = clock
        # Verified against when a username is unknown, so a miss costs as much as a hit and
        # response times do not reveal which usernames exist.
        self._decoy = self._hasher.hash(secrets.token_urlsafe(16))

    @contextmanager
    def _tx(self, *, write: bool) -> Iterator[Connection]:
        with self._engine.connect() as conn:
            if write:
                conn.execution_options(**{_WRITE_OPTION: True})
            with conn.begin():
                yield conn

    # -- users -------------------------------------------------------------------------------

    def count(self) -> int:
        with self._tx(write=False) as conn:
            return int(conn.scalar(select(func.count()).select_from(ui_users)) or 0)

    def list(self) -> list[User]:
        """Every user, oldest first."""
        with self._tx(write=False) as conn:
            return [_user(r) for r in conn.execute(select(ui_users).order_by(ui_users.c.seq))]

    def get(self, id_or_username: str) -> User | None:
        with self._tx(write=False) as conn:
            row = self._row(conn, id_or_username)
        return None if row is None else _user(row)

    @staticmethod
    def _row(conn: Connection, id_or_username: str) -> Any:
        for column in (ui_users.c.id, ui_users.c.username):
            row = conn.execute(select(ui_users).where(column == id_or_username)).first()
            if row is not None:
                return row
        return None

    def create(
        self,
        username: str,
        password: str,
        role: str,
        *,
        actor: str = "system",
        request_id: str | None = None,
    ) -> User:
        """Add a user. Raises SchemaViolation for a bad username, password or role and
        UniqueViolation when the username is taken."""
        check_username(username)
        check_password(password)
        valid_role = check_role(role)
        password_hash = self._hasher.hash(password)
        now = int(self._clock())
        user = User(str(uuid.uuid4()), username, valid_role, now, now, None)
        with self._tx(write=True) as conn:
            taken = conn.scalar(select(ui_users.c.id).where(ui_users.c.username == username))
            if taken is not None:
                raise UniqueViolation({"username": username})
            conn.execute(
                insert(ui_users).values(
                    id=user.id,
                    username=username,
                    role=valid_role,
                    password_hash=password_hash,
                    created_at=now,
                    updated_at=now,
                    last_login_at=None,
                )
            )
            entry = sql_audit.pending(ENTITY, None, _shown(user), user.id, username)
            sql_audit.write_entries(conn, [entry], actor, request_id)
        return user

    def update(
        self,
        id_or_username: str,
        *,
        role: str | None = None,
        password: str | None = None,
        actor: str = "system",
        request_id: str | None = None,
    ) -> User | None:
        """Change a user's role and/or password (a new password ends their sessions).
        None when there is no such user."""
        values: dict[str, Any] = {}
        if role is not None:
            values["role"] = check_role(role)
        if password is not None:
            check_password(password)
            values["password_hash"] = self._hasher.hash(password)
        with self._tx(write=True) as conn:
            row = self._row(conn, id_or_username)
            if row is None:
                return None
            before = _user(row)
            values["updated_at"] = int(self._clock())
            conn.execute(update(ui_users).where(ui_users.c.id == before.id).values(**values))
            if password is not None:
                conn.execute(delete(ui_sessions).where(ui_sessions.c.user_id == before.id))
            after = _user(self._row(conn, before.id))
            diff_after = _shown(after) | ({"password": "[changed]"} if password else {})
            entry = sql_audit.pending(ENTITY, _shown(before), diff_after, after.id, after.username)
            sql_audit.write_entries(conn, [entry], actor, request_id)
        return after

    def delete(
        self, id_or_username: str, *, actor: str = "system", request_id: str | None = None
    ) -> bool:
        """Delete a user and their sessions; False if there was none."""
        with self._tx(write=True) as conn:
            row = self._row(conn, id_or_username)
            if row is None:
                return False
            user = _user(row)
            conn.execute(delete(ui_sessions).where(ui_sessions.c.user_id == user.id))
            conn.execute(delete(ui_users).where(ui_users.c.id == user.id))
            entry = sql_audit.pending(ENTITY, _shown(user), None, user.id, user.username)
            sql_audit.write_entries(conn, [entry], actor, request_id)
        return True

    def authenticate(self, username: str, password: str) -> User | None:
        """The user if `password` is theirs, else None (in about the same time either way)."""
        if len(password) > MAX_PASSWORD:
            return None
        with self._tx(write=False) as conn:
            row = conn.execute(select(ui_users).where(ui_users.c.username == username)).first()
        stored = self._decoy if row is None else str(row.password_hash)
        try:
            self._hasher.verify(stored, password)
        except (VerificationError, InvalidHashError):
            return None
        if row is None:
            return None
        if self._hasher.check_needs_rehash(stored):
            with self._tx(write=True) as conn:
                conn.execute(
                    update(ui_users)
                    .where(ui_users.c.id == row.id)
                    .values(password_hash=self._hasher.hash(password))
                )
        return _user(row)

    # -- sessions ----------------------------------------------------------------------------

    def start_session(self, user: User, ttl_s: int) -> tuple[str, Session]:
        """A new session for `user` lasting at most `ttl_s`: the cookie value (shown to the
        browser only) and the session."""
        token = secrets.token_urlsafe(32)
        now = int(self._clock())
        session = Session(user, secrets.token_urlsafe(32), now, now + ttl_s, now)
        with self._tx(write=True) as conn:
            conn.execute(
                insert(ui_sessions).values(
                    token_hash=_digest(token),
                    user_id=user.id,
                    csrf_token=session.csrf_token,
                    created_at=now,
                    expires_at=session.expires_at,
                    last_seen_at=now,
                )
            )
            conn.execute(update(ui_users).where(ui_users.c.id == user.id).values(last_login_at=now))
            # Expired rows of anyone are dropped here, so the table never grows without bound.
            conn.execute(delete(ui_sessions).where(ui_sessions.c.expires_at <= now))
        return token, session

    def session(self, token: str, idle_s: int) -> Session | None:
        """The live session for a cookie value: None if unknown, past its expiry, or idle for
        `idle_s` or more. Marks it seen (at most once a minute, to spare the write lock)."""
        now = int(self._clock())
        with self._tx(write=False) as conn:
            row = conn.execute(
                select(
                    ui_users,
                    ui_sessions.c.csrf_token,
                    ui_sessions.c.created_at.label("session_created_at"),
                    ui_sessions.c.expires_at,
                    ui_sessions.c.last_seen_at,
                )
                .join(ui_users, ui_users.c.id == ui_sessions.c.user_id)
                .where(ui_sessions.c.token_hash == _digest(token))
            ).first()
        if row is None or row.expires_at <= now or now - row.last_seen_at >= idle_s:
            return None
        if now - row.last_seen_at >= 60:
            with self._tx(write=True) as conn:
                conn.execute(
                    update(ui_sessions)
                    .where(ui_sessions.c.token_hash == _digest(token))
                    .values(last_seen_at=now)
                )
        created = int(row.session_created_at)
        return Session(_user(row), row.csrf_token, created, int(row.expires_at), now)

    def end_session(self, token: str) -> None:
        with self._tx(write=True) as conn:
            conn.execute(delete(ui_sessions).where(ui_sessions.c.token_hash == _digest(token)))


def _shown(user: User) -> dict[str, Any]:
    return {
        "id": user.id,
        "username": user.username,
        "role": user.role,
        "created_at": user.created_at,
        "updated_at": user.updated_at,
    }


__all__ = [
    "MIN_PASSWORD",
    "SchemaViolation",
    "Session",
    "UniqueViolation",
    "User",
    "UserStore",
]
