"""The walking skeleton's schema: entity tables, the revision counter, the schema version.

Frozen: this file describes the schema as it was, whatever `tables.py` says today.

Revision ID: 0001
Revises: (none)
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _fk(target: str) -> sa.ForeignKey:
    return sa.ForeignKey(target, deferrable=True, initially="DEFERRED")


def _entity_table(name: str, *columns: sa.Column[Any]) -> None:
    op.create_table(
        name,
        sa.Column("seq", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("id", sa.String(36), nullable=False, unique=True),
        *columns,
        sa.Column("data", sa.Text, nullable=False),
    )


def upgrade() -> None:
    _entity_table(
        "services",
        sa.Column("name", sa.String(255), unique=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
    )
    _entity_table(
        "routes",
        sa.Column("name", sa.String(255), unique=True),
        sa.Column("service_id", sa.String(36), _fk("services.id"), index=True),
    )
    _entity_table(
        "consumers",
        sa.Column("username", sa.String(255), unique=True),
        sa.Column("custom_id", sa.String(255), unique=True),
    )
    _entity_table(
        "keyauth_credentials",
        sa.Column("consumer_id", sa.String(36), _fk("consumers.id"), nullable=False, index=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("expires_at", sa.Integer),
    )
    _entity_table(
        "plugins",
        sa.Column("name", sa.String(255), nullable=False),
        sa.Column("instance_name", sa.String(255), unique=True),
        sa.Column("cache_key", sa.String(255), nullable=False, unique=True),
        sa.Column("enabled", sa.Boolean, nullable=False),
        sa.Column("service_id", sa.String(36), _fk("services.id"), index=True),
        sa.Column("route_id", sa.String(36), _fk("routes.id"), index=True),
        sa.Column("consumer_id", sa.String(36), _fk("consumers.id"), index=True),
    )
    revision_table = op.create_table(
        "lockgate_revision",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("value", sa.Integer, nullable=False),
    )
    schema_table = op.create_table(
        "lockgate_schema",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("version", sa.Integer, nullable=False),
    )
    op.bulk_insert(revision_table, [{"id": 1, "value": 0}])
    op.bulk_insert(schema_table, [{"id": 1, "version": 1}])


def downgrade() -> None:
    for name in (
        "lockgate_schema",
        "lockgate_revision",
        "plugins",
        "keyauth_credentials",
        "consumers",
        "routes",
        "services",
    ):
        op.drop_table(name)
