"""Engines, transactions, locking and migrations for the identity registry.

Concurrency strategy
--------------------
Reads (the login fast path) run in ordinary transactions and take no lock. Every write
runs in one transaction per call that first takes the registry's single write lock, re-reads
what it needs, assigns and commits; a failure anywhere rolls the whole mapping back, so no
partial rows are ever left.

* PostgreSQL: ``SELECT pg_advisory_xact_lock(<WRITE_LOCK_KEY>)`` at the start of the
  transaction. It serialises assignment across every hub replica and worker, and is released
  by commit or rollback. ``lock_timeout`` bounds the wait (also for row and table locks).
* SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock up front (so two writers never
  deadlock upgrading a read lock), with a busy timeout of ``lock_timeout``; the database is
  in WAL mode so logins of known identities keep reading while a write is in progress.

Migrations run once per registry object, inside such a write transaction (on PostgreSQL
under a separate ``pg_advisory_xact_lock(<MIGRATION_LOCK_KEY>)``), so processes that start
together upgrade one after the other.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, exc, text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session

from .errors import RegistryError, RegistryUnavailableError

__all__ = [
    "MIGRATION_LOCK_KEY",
    "WRITE_LOCK_KEY",
    "check_db_url",
    "database_errors",
    "make_engine",
    "read_connection",
    "read_session",
    "upgrade_database",
    "write_session",
]

WRITE_LOCK_KEY = 0x1215_0051
"""PostgreSQL advisory lock key serialising every write to the registry."""

MIGRATION_LOCK_KEY = 0x1215_0052
"""PostgreSQL advisory lock key serialising schema upgrades."""

_WRITE_OPTION = "iris_registry_write"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


def check_db_url(value: str, trait: str) -> str:
    """``value`` if empty or a SQLite / PostgreSQL URL; else a ValueError naming ``trait``."""
    if not value:
        return value
    try:
        backend = make_url(value).get_backend_name()
    except Exception as error:
        raise ValueError(f"{trait}: not a database URL: {error}") from None
    if backend not in ("sqlite", "postgresql"):
        raise ValueError(
            f"{trait}: must be a sqlite:/// or postgresql+psycopg:// URL (got backend {backend!r})"
        )
    return value


def _is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(url: str, *, connect_timeout: float, lock_timeout: float) -> Engine:
    """An engine for ``url`` with the registry's timeouts and transaction behaviour."""
    parsed = make_url(url)
    connect_args: dict[str, Any] = {}
    kwargs: dict[str, Any] = {}
    if parsed.get_backend_name() == "sqlite":
        connect_args["timeout"] = lock_timeout
    elif parsed.get_backend_name() == "postgresql":
        # libpq accepts whole seconds and treats values below 2 as 2
        connect_args["connect_timeout"] = max(2, math.ceil(connect_timeout))
        lock_ms = max(1, int(lock_timeout * 1000))
        connect_args["options"] = f"-c lock_timeout={lock_ms}"
        kwargs["pool_timeout"] = connect_timeout
        kwargs["pool_pre_ping"] = True  # a restarted server must not fail the next login
    engine = create_engine(parsed, connect_args=connect_args, **kwargs)
    if _is_sqlite(engine):
        _configure_sqlite(engine)
    return engine


def _configure_sqlite(engine: Engine) -> None:
    """Let SQLAlchemy, not pysqlite, emit BEGIN: deferred for reads, IMMEDIATE for writes."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            if engine.url.database not in (None, "", ":memory:"):
                cursor.execute("PRAGMA journal_mode=WAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(_WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _lock(connection: Connection, key: int) -> None:
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


@contextmanager
def database_errors(action: str) -> Iterator[None]:
    """Turn database failures into :class:`RegistryError` subclasses with a log message."""
    try:
        yield
    except RegistryError:
        raise
    except (exc.OperationalError, exc.InterfaceError, exc.TimeoutError) as error:
        detail = str(getattr(error, "orig", None) or error).strip().splitlines()
        raise RegistryUnavailableError(
            f"identity registry database unavailable while {action}: "
            f"{detail[0] if detail else type(error).__name__}"
        ) from error
    except exc.DBAPIError as error:
        if error.connection_invalidated:
            raise RegistryUnavailableError(
                f"identity registry database connection lost while {action}"
            ) from error
        raise RegistryError(f"identity registry database error while {action}: {error}") from error


@contextmanager
def read_session(engine: Engine, action: str) -> Iterator[Session]:
    """A session in a read transaction (no lock), closed afterwards."""
    with (
        database_errors(action),
        Session(engine, expire_on_commit=False) as session,
        session.begin(),
    ):
        yield session


@contextmanager
def write_session(engine: Engine, action: str) -> Iterator[Session]:
    """A session in a transaction holding the registry's write lock; commit on success."""
    bind = engine.execution_options(**{_WRITE_OPTION: True})
    with (
        database_errors(action),
        Session(bind, expire_on_commit=False) as session,
        session.begin(),
    ):
        _lock(session.connection(), WRITE_LOCK_KEY)
        yield session


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic configuration for the shipped migrations (no ``alembic.ini`` needed)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def upgrade_database(engine: Engine) -> None:
    """Apply the shipped migrations up to ``head``; safe when processes start together."""
    bind = engine.execution_options(**{_WRITE_OPTION: True})
    with database_errors("upgrading the database schema"), bind.begin() as connection:
        _lock(connection, MIGRATION_LOCK_KEY)
        command.upgrade(alembic_config(connection), "head")


@contextmanager
def read_connection(engine: Engine, action: str) -> Iterator[Connection]:
    """A plain connection in a read transaction (no lock): the fast path."""
    with database_errors(action), engine.connect() as connection, connection.begin():
        yield connection
