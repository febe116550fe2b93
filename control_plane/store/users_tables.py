"""The web UI's tables: users (argon2 password hashes) and their login sessions.

They join the store's one `MetaData` (control_plane.store.tables) so the migration contract
test compares them too; migration `0004` creates them. Users are not config: writing them never
moves the revision and data planes never see them.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, ForeignKey, Index, Integer, String, Table

from control_plane.store.tables import metadata

ui_users = Table(
    "ui_users",
    metadata,
    Column("seq", Integer, primary_key=True, autoincrement=True),
    Column("id", String(36), nullable=False, unique=True),
    Column("username", String(255), nullable=False, unique=True),
    Column("role", String(16), nullable=False),
    Column("password_hash", String(255), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("updated_at", BigInteger, nullable=False),
    Column("last_login_at", BigInteger),
)

ui_sessions = Table(
    "ui_sessions",
    metadata,
    # SHA-256 of the cookie value: a stolen database does not yield live sessions.
    Column("token_hash", String(64), primary_key=True),
    Column(
        "user_id",
        String(36),
        ForeignKey("ui_users.id", ondelete="CASCADE"),
        nullable=False,
    ),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at", BigInteger, nullable=False),
    Column("expires_at", BigInteger, nullable=False),
    Column("last_seen_at", BigInteger, nullable=False),
    Index("ix_ui_sessions_user_id", "user_id"),
)
