"""The accounting table (SQLAlchemy 2 typed ORM), beside the identity registry's tables.

One row per notebook session, keyed by ``record_id`` (unique) with an integer ``id`` that
exports use as a numeric job id. Free text that comes from people (identity, hub user
name, profile, image) is stored with :class:`~iris_jupyterhub.db.OpaqueText`, so
NUL and lone surrogates survive a round trip on both SQLite and PostgreSQL. Names that
Kubernetes or the POSIX registry already restrict (server, POSIX user and group, node,
namespace, pod) are plain text, which keeps exports fast; the store replaces a NUL or a
lone surrogate in them (impossible there) by U+FFFD so that a write can never fail on it.
Profile ``choices`` are JSON text with sorted keys and ASCII escapes. The table has its
own metadata and its own Alembic version table (``accounting_alembic_version``), so it
migrates independently of the registry.

Indexes: ``(start_time, record_id)`` for the ordered, paginated export scan;
``end_time`` for sessions that started before an export range but ended inside it; a
partial index on ``record_id`` where ``end_time IS NULL`` for the open sessions.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, Index, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from ..db import OpaqueText, UTCDateTime

__all__ = ["AccountingBase", "SessionRow"]

TABLE = "accounting_sessions"
OPEN_WHERE = text("end_time IS NULL")


class AccountingBase(DeclarativeBase):
    """Declarative base of the accounting tables (separate from the registry's)."""


class SessionRow(AccountingBase):
    """One session; see :class:`~iris_jupyterhub.accounting.records.SessionRecord`."""

    __tablename__ = TABLE

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    record_id: Mapped[str] = mapped_column(String(64))
    identity_key: Mapped[str] = mapped_column(OpaqueText())
    hub_user: Mapped[str] = mapped_column(OpaqueText())
    server_name: Mapped[str] = mapped_column(Text())
    posix_user: Mapped[str | None] = mapped_column(Text(), nullable=True)
    uid: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    gid: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    posix_group: Mapped[str | None] = mapped_column(Text(), nullable=True)
    canonical_group: Mapped[str | None] = mapped_column(String(320), nullable=True)
    profile: Mapped[str | None] = mapped_column(OpaqueText(), nullable=True)
    choices: Mapped[str] = mapped_column(Text)
    image: Mapped[str | None] = mapped_column(OpaqueText(), nullable=True)
    cpu_request: Mapped[float | None] = mapped_column(Float, nullable=True)
    cpu_limit: Mapped[float | None] = mapped_column(Float, nullable=True)
    memory_request: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    memory_limit: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    gpus: Mapped[int] = mapped_column(Integer)
    node: Mapped[str | None] = mapped_column(Text(), nullable=True)
    namespace: Mapped[str | None] = mapped_column(Text(), nullable=True)
    pod: Mapped[str | None] = mapped_column(Text(), nullable=True)
    start_time: Mapped[datetime] = mapped_column(UTCDateTime())
    end_time: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(16), nullable=True)
    last_seen: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = (
        Index("ix_accounting_sessions_record", "record_id", unique=True),
        Index("ix_accounting_sessions_start", "start_time", "record_id"),
        Index("ix_accounting_sessions_end", "end_time"),
        Index(
            "ix_accounting_sessions_open",
            "record_id",
            sqlite_where=OPEN_WHERE,
            postgresql_where=OPEN_WHERE,
        ),
    )
