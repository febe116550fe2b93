"""Admin tokens and the audit log; 64-bit credential expiry on PostgreSQL.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "admin_tokens",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("name", sa.String(255), nullable=False, unique=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", sa.BigInteger, nullable=False),
        sa.Column("last_used_at", sa.BigInteger),
        sa.Column("expires_at", sa.BigInteger),
    )
    op.create_table(
        "audit_log",
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        sa.Column("at", sa.Double, nullable=False),
        sa.Column("actor", sa.String(255), nullable=False),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("entity", sa.String(64), nullable=False),
        sa.Column("entity_id", sa.String(36)),
        sa.Column("entity_name", sa.String(255)),
        sa.Column("diff", sa.Text, nullable=False),
        sa.Column("request_id", sa.String(255)),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    # SQLite integers are 64-bit already; PostgreSQL's INTEGER would overflow in 2038.
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("keyauth_credentials", "expires_at", type_=sa.BigInteger)
    # An older Lockgate checks only this number: make it refuse this database.
    op.execute(sa.text("UPDATE lockgate_schema SET version = 2 WHERE id = 1"))


def downgrade() -> None:
    op.execute(sa.text("UPDATE lockgate_schema SET version = 1 WHERE id = 1"))
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column("keyauth_credentials", "expires_at", type_=sa.Integer)
    op.drop_index("ix_audit_log_at", "audit_log")
    op.drop_table("audit_log")
    op.drop_table("admin_tokens")
