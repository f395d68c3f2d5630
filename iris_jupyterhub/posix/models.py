"""Database tables of the identity registry (SQLAlchemy 2 typed ORM).

Table names carry a ``posix_`` prefix so the registry can share a database with
JupyterHub (which has its own ``users`` and ``groups`` tables). Uniqueness is enforced by
named unique indexes; the registry still checks with queries before trusting a row, so a
database whose indexes were dropped and rows edited is detected, not silently used.

The identity key is looked up through ``key_digest``, the SHA-256 of the (issuer,
subject) encoding: a fixed-size column keeps the unique index small and within
PostgreSQL's btree row limit for 1024-character Unicode subjects. ``issuer`` and
``subject`` are stored for display and export, escaped by
:class:`~iris_jupyterhub.db.OpaqueText` so that NUL and lone surrogates (which neither
database stores) survive a round trip.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..db import OpaqueText, UTCDateTime, utcnow

__all__ = ["Base", "Group", "Identity", "Membership"]


class Base(DeclarativeBase):
    """Declarative base of the registry's tables."""


class Identity(Base):
    """One identity (issuer, subject) and its permanent uid, personal gid and name."""

    __tablename__ = "posix_identities"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key_digest: Mapped[str] = mapped_column(String(64))
    issuer: Mapped[str] = mapped_column(OpaqueText())
    subject: Mapped[str] = mapped_column(OpaqueText())
    uid: Mapped[int] = mapped_column(Integer)
    personal_gid: Mapped[int] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(32))
    pinned: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        Index("ix_posix_identities_key", "key_digest", unique=True),
        Index("ix_posix_identities_uid", "uid", unique=True),
        Index("ix_posix_identities_personal_gid", "personal_gid", unique=True),
        Index("ix_posix_identities_username", "username", unique=True),
    )


class Group(Base):
    """A canonical group (after aliases) and its permanent gid and POSIX name."""

    __tablename__ = "posix_groups"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    canonical: Mapped[str] = mapped_column(String(255))
    name: Mapped[str] = mapped_column(String(32))
    gid: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)

    __table_args__ = (
        Index("ix_posix_groups_canonical", "canonical", unique=True),
        Index("ix_posix_groups_gid", "gid", unique=True),
        Index("ix_posix_groups_name", "name", unique=True),
    )


class Membership(Base):
    """An identity's current membership of a group, as of its last login."""

    __tablename__ = "posix_memberships"

    identity_id: Mapped[int] = mapped_column(
        ForeignKey("posix_identities.id", ondelete="CASCADE"), primary_key=True
    )
    group_id: Mapped[int] = mapped_column(
        ForeignKey("posix_groups.id", ondelete="CASCADE"), primary_key=True
    )

    __table_args__ = (Index("ix_posix_memberships_group", "group_id"),)
