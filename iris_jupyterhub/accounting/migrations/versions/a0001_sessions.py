"""Accounting sessions.

Revision ID: a0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from iris_jupyterhub.db import OpaqueText, UTCDateTime

revision = "a0001"
down_revision = None
branch_labels = None
depends_on = None

TABLE = "accounting_sessions"
OPEN_WHERE = sa.text("end_time IS NULL")


def upgrade() -> None:
    """Create the sessions table and its indexes."""
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("record_id", sa.String(64), nullable=False),
        sa.Column("identity_key", OpaqueText(), nullable=False),
        sa.Column("hub_user", OpaqueText(), nullable=False),
        sa.Column("server_name", sa.Text(), nullable=False),
        sa.Column("posix_user", sa.Text(), nullable=True),
        sa.Column("uid", sa.BigInteger(), nullable=True),
        sa.Column("gid", sa.BigInteger(), nullable=True),
        sa.Column("posix_group", sa.Text(), nullable=True),
        sa.Column("canonical_group", sa.String(320), nullable=True),
        sa.Column("profile", OpaqueText(), nullable=True),
        sa.Column("choices", sa.Text(), nullable=False),
        sa.Column("image", OpaqueText(), nullable=True),
        sa.Column("cpu_request", sa.Float(), nullable=True),
        sa.Column("cpu_limit", sa.Float(), nullable=True),
        sa.Column("memory_request", sa.BigInteger(), nullable=True),
        sa.Column("memory_limit", sa.BigInteger(), nullable=True),
        sa.Column("gpus", sa.Integer(), nullable=False),
        sa.Column("node", sa.Text(), nullable=True),
        sa.Column("namespace", sa.Text(), nullable=True),
        sa.Column("pod", sa.Text(), nullable=True),
        sa.Column("start_time", UTCDateTime(), nullable=False),
        sa.Column("end_time", UTCDateTime(), nullable=True),
        sa.Column("end_reason", sa.String(16), nullable=True),
        sa.Column("last_seen", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_accounting_sessions_record", TABLE, ["record_id"], unique=True)
    op.create_index("ix_accounting_sessions_start", TABLE, ["start_time", "record_id"])
    op.create_index("ix_accounting_sessions_end", TABLE, ["end_time"])
    op.create_index(
        "ix_accounting_sessions_open",
        TABLE,
        ["record_id"],
        sqlite_where=OPEN_WHERE,
        postgresql_where=OPEN_WHERE,
    )


def downgrade() -> None:
    """Drop the table (and with it its indexes)."""
    op.drop_table(TABLE)
