"""Identities, groups and memberships.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from iris_jupyterhub.db import OpaqueText, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the three tables and their named unique indexes."""
    op.create_table(
        "posix_identities",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("key_digest", sa.String(64), nullable=False),
        sa.Column("issuer", OpaqueText(), nullable=False),
        sa.Column("subject", OpaqueText(), nullable=False),
        sa.Column("uid", sa.Integer(), nullable=False),
        sa.Column("personal_gid", sa.Integer(), nullable=False),
        sa.Column("username", sa.String(32), nullable=False),
        sa.Column("pinned", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=True),
        sa.Column("deleted_at", UTCDateTime(), nullable=True),
    )
    op.create_index("ix_posix_identities_key", "posix_identities", ["key_digest"], unique=True)
    op.create_index("ix_posix_identities_uid", "posix_identities", ["uid"], unique=True)
    op.create_index(
        "ix_posix_identities_personal_gid", "posix_identities", ["personal_gid"], unique=True
    )
    op.create_index("ix_posix_identities_username", "posix_identities", ["username"], unique=True)
    op.create_table(
        "posix_groups",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("canonical", sa.String(255), nullable=False),
        sa.Column("name", sa.String(32), nullable=False),
        sa.Column("gid", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
    )
    op.create_index("ix_posix_groups_canonical", "posix_groups", ["canonical"], unique=True)
    op.create_index("ix_posix_groups_gid", "posix_groups", ["gid"], unique=True)
    op.create_index("ix_posix_groups_name", "posix_groups", ["name"], unique=True)
    op.create_table(
        "posix_memberships",
        sa.Column(
            "identity_id",
            sa.Integer(),
            sa.ForeignKey("posix_identities.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "group_id",
            sa.Integer(),
            sa.ForeignKey("posix_groups.id", ondelete="CASCADE"),
            primary_key=True,
        ),
    )
    op.create_index("ix_posix_memberships_group", "posix_memberships", ["group_id"])


def downgrade() -> None:
    """Drop everything this revision created."""
    op.drop_table("posix_memberships")
    op.drop_table("posix_groups")
    op.drop_table("posix_identities")
