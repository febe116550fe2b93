"""Per-minute request analytics reported by data planes.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_BUCKETS = 24  # control_plane.store.analytics_tables.LATENCY_BUCKETS when written


def upgrade() -> None:
    op.create_table(
        "analytics_minutes",
        sa.Column("node_id", sa.String(255), primary_key=True),
        sa.Column("instance_id", sa.String(64), primary_key=True),
        sa.Column("minute", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("group_key", sa.String(64), primary_key=True),
        sa.Column("batch_seq", sa.BigInteger, nullable=False),
        sa.Column("route_id", sa.String(36), nullable=False),
        sa.Column("route", sa.String(255), nullable=False),
        sa.Column("service_id", sa.String(36), nullable=False),
        sa.Column("service", sa.String(255), nullable=False),
        sa.Column("consumer_id", sa.String(36), nullable=False),
        sa.Column("consumer", sa.String(255), nullable=False),
        sa.Column("status_class", sa.String(8), nullable=False),
        sa.Column("provider", sa.String(64), nullable=False),
        sa.Column("model", sa.String(255), nullable=False),
        sa.Column("requests", sa.BigInteger, nullable=False),
        sa.Column("latency_sum_ms", sa.Double, nullable=False),
        *(sa.Column(f"lat_{i:02d}", sa.BigInteger, nullable=False) for i in range(_BUCKETS)),
        sa.Column("prompt_tokens", sa.BigInteger, nullable=False),
        sa.Column("completion_tokens", sa.BigInteger, nullable=False),
        sa.Column("cost_nanos", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_analytics_minutes_minute", "analytics_minutes", ["minute"])


def downgrade() -> None:
    op.drop_index("ix_analytics_minutes_minute", "analytics_minutes")
    op.drop_table("analytics_minutes")
