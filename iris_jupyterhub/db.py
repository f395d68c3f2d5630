"""Shared database layer: engines, transactions, locking, column types, default location.

The identity registry (:mod:`iris_jupyterhub.posix`) and session accounting
(:mod:`iris_jupyterhub.accounting`) keep their tables in one database, a SQLite file by
default and PostgreSQL in production; both build engines, open transactions, migrate and
find the default database here.

Where the database is
---------------------
:func:`registry_db_url` is the one rule, used by the hub (authenticators and spawner) and
by the ``iris-jupyterhub`` commands. First match wins:

1. an explicit URL (``--db-url``; for accounting also ``c.SessionAccounting.db_url``);
2. ``c.IdentityRegistry.db_url``;
3. the environment variable ``IRIS_REGISTRY_DB_URL`` (the commands only, not the hub);
4. the SQLite file ``iris-identities.sqlite`` beside the hub's SQLite database
   (``c.JupyterHub.db_url``, JupyterHub's default ``sqlite:///jupyterhub.sqlite`` when
   unset), or in the working directory when the hub's database is not a SQLite file.

Run the commands with the hub's ``jupyterhub_config.py`` (``--config``) and they open the
database the hub uses. A relative SQLite path is relative to the working directory, as
it is for JupyterHub.

Concurrency strategy
--------------------
Reads run in ordinary transactions and take no lock; the login fast path is a single
statement on its own autocommit engine (:func:`read_once`: one round trip). Every write
runs in one transaction per call that first takes the database's single write lock,
re-reads what it needs, assigns and commits; a failure anywhere rolls the whole change
back, so no partial rows are ever left.

* PostgreSQL: ``SELECT pg_advisory_xact_lock(<WRITE_LOCK_KEY>)`` at the start of the
  transaction. It serialises writes across every hub replica and worker, and is released
  by commit or rollback. ``lock_timeout`` bounds the wait (also for row and table locks).
* SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock up front (so two writers never
  deadlock upgrading a read lock), with a busy timeout of ``lock_timeout``; the database is
  in WAL mode so logins of known identities keep reading while a write is in progress.

Migrations (:func:`upgrade_schema`) run inside such a write transaction (on PostgreSQL
under a ``pg_advisory_xact_lock``), so processes that start together upgrade one after
the other.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import DateTime, Dialect, Engine, Text, TypeDecorator, create_engine, event, exc
from sqlalchemy import text as sql
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.orm import Session
from traitlets.config import Config

__all__ = [
    "DB_URL_ENV",
    "HUB_DB_URL_DEFAULT",
    "MIGRATION_LOCK_KEY",
    "REGISTRY_FILE",
    "WRITE_LOCK_KEY",
    "DatabaseError",
    "DatabaseUnavailableError",
    "OpaqueText",
    "UTCDateTime",
    "check_db_url",
    "database_errors",
    "hub_db_url",
    "make_engine",
    "read_connection",
    "read_once",
    "read_session",
    "registry_db_url",
    "upgrade_schema",
    "utcnow",
    "write_session",
]

# -- where the database is -----------------------------------------------------------------

REGISTRY_FILE = "iris-identities.sqlite"
"""File name of the default SQLite database (identity registry and accounting)."""

DB_URL_ENV = "IRIS_REGISTRY_DB_URL"
"""Environment variable the ``iris-jupyterhub`` commands read the database URL from."""

HUB_DB_URL_DEFAULT = "sqlite:///jupyterhub.sqlite"
"""The default of ``c.JupyterHub.db_url``."""

_SQLITE = "sqlite:///"
_T = TypeVar("_T")


def _section(config: Config | None, name: str) -> Mapping[str, Any]:
    section = (config or Config()).get(name, {})
    return section if isinstance(section, Mapping) else {}


def hub_db_url(config: Config | None) -> str:
    """The hub's database URL as JupyterHub derives it from ``config``.

    ``c.JupyterHub.db_url`` (set in the file or with ``jupyterhub --db``), a plain file
    name taken as SQLite as JupyterHub does, else JupyterHub's default.
    """
    value = str(_section(config, "JupyterHub").get("db_url") or HUB_DB_URL_DEFAULT)
    return value if "://" in value else _SQLITE + value


def registry_db_url(
    config: Config | None,
    *,
    explicit: str | None = None,
    environ: Mapping[str, str] | None = None,
    hub_db: str | None = None,
) -> str:
    """The registry's (and by default accounting's) database URL; see the module documentation.

    Args:
        config: The hub's configuration (``c.IdentityRegistry``, ``c.JupyterHub``).
        explicit: A URL that wins over everything (``--db-url``).
        environ: Where to read :data:`DB_URL_ENV` from; None (the hub) ignores it.
        hub_db: The running hub's database URL when known; else derived from ``config``.
    """
    if explicit:
        return explicit
    configured = _section(config, "IdentityRegistry").get("db_url")
    if configured:
        return str(configured)
    if environ is not None and environ.get(DB_URL_ENV):
        return environ[DB_URL_ENV]
    hub = hub_db or hub_db_url(config)
    if hub.startswith(_SQLITE) and hub != _SQLITE + ":memory:":
        return _SQLITE + str(Path(hub[len(_SQLITE) :]).parent / REGISTRY_FILE)
    return _SQLITE + REGISTRY_FILE


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


# -- column types --------------------------------------------------------------------------

_UNSTORABLE_RE = re.compile(r"[\\\x00\ud800-\udfff]")
_ESCAPE_RE = re.compile(r"\\(\\|u[0-9a-f]{4})")


def utcnow() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(timezone.utc)


def _escape_char(match: re.Match[str]) -> str:
    char = match.group(0)
    return "\\\\" if char == "\\" else f"\\u{ord(char):04x}"


def _unescape_char(match: re.Match[str]) -> str:
    code = match.group(1)
    return "\\" if code == "\\" else chr(int(code[1:], 16))


class OpaqueText(TypeDecorator[str]):
    """Text stored with ``\\`` , NUL and lone surrogates escaped as ``\\\\`` / ``\\uXXXX``."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else _UNSTORABLE_RE.sub(_escape_char, value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> str | None:
        return None if value is None else _ESCAPE_RE.sub(_unescape_char, value)


class UTCDateTime(TypeDecorator[datetime]):
    """A UTC timestamp, stored without zone and always returned timezone-aware."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.astimezone(timezone.utc).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        return None if value is None else value.replace(tzinfo=timezone.utc)


# -- failures ------------------------------------------------------------------------------


class DatabaseError(Exception):
    """A database operation failed (the message names the operation, for the log)."""


class DatabaseUnavailableError(DatabaseError):
    """The database is down, unreachable, or locked for longer than allowed."""


@contextmanager
def database_errors(action: str) -> Iterator[None]:
    """Turn SQLAlchemy failures into :class:`DatabaseError` subclasses naming ``action``."""
    try:
        yield
    except DatabaseError:
        raise
    except (exc.OperationalError, exc.InterfaceError, exc.TimeoutError) as error:
        detail = str(getattr(error, "orig", None) or error).strip().splitlines()
        raise DatabaseUnavailableError(
            f"database unavailable while {action}: {detail[0] if detail else type(error).__name__}"
        ) from error
    except exc.DBAPIError as error:
        if error.connection_invalidated:
            raise DatabaseUnavailableError(f"database connection lost while {action}") from error
        raise DatabaseError(f"database error while {action}: {error}") from error


# -- engines and transactions --------------------------------------------------------------

WRITE_LOCK_KEY = 0x1215_0051
"""PostgreSQL advisory lock key serialising every write (registry and accounting)."""

MIGRATION_LOCK_KEY = 0x1215_0052
"""PostgreSQL advisory lock key serialising the registry's schema upgrades."""

_WRITE_OPTION = "iris_registry_write"


def _is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def make_engine(
    url: str, *, connect_timeout: float, lock_timeout: float, single_reads: bool = False
) -> Engine:
    """An engine for ``url`` with these timeouts and the transaction behaviour above.

    ``single_reads``: an engine for :func:`read_once` only (the login fast path): every
    statement its own transaction (autocommit: no ``BEGIN``/``COMMIT`` round trips) and no
    ping before each use (a connection lost to a server restart is retried instead).
    """
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
        # a restarted server must not fail the next login (read_once retries instead)
        kwargs["pool_pre_ping"] = not single_reads
    if single_reads:
        kwargs["isolation_level"] = "AUTOCOMMIT"
    engine = create_engine(parsed, connect_args=connect_args, **kwargs)
    if _is_sqlite(engine) and not single_reads:
        _configure_sqlite(engine)
    return engine


def read_once(engine: Engine, action: str, read: Callable[[Connection], _T]) -> _T:
    """``read(connection)`` on an engine made with ``single_reads``: for ONE statement,
    which is its own transaction (a consistent snapshot on both databases). Tried again
    once on a fresh connection if the pooled one was lost (a restarted server)."""
    with database_errors(action):
        try:
            with engine.connect() as connection:
                return read(connection)
        except exc.DBAPIError as error:
            if not error.connection_invalidated:
                raise
        with engine.connect() as connection:
            return read(connection)


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
        connection.execute(sql("SELECT pg_advisory_xact_lock(:key)"), {"key": key})


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
    """A session in a transaction holding the write lock; commit on success."""
    bind = engine.execution_options(**{_WRITE_OPTION: True})
    with (
        database_errors(action),
        Session(bind, expire_on_commit=False) as session,
        session.begin(),
    ):
        _lock(session.connection(), WRITE_LOCK_KEY)
        yield session


def upgrade_schema(engine: Engine, migrations: Path, *, lock_key: int, action: str) -> None:
    """Apply the Alembic migrations in ``migrations`` up to ``head`` (no ``alembic.ini``).

    Runs in a write transaction holding ``lock_key`` on PostgreSQL (SQLite's write lock
    otherwise), so processes that start together upgrade one after the other; the
    migrations' ``env.py`` runs on the connection passed in ``attributes["connection"]``.
    """
    bind = engine.execution_options(**{_WRITE_OPTION: True})
    with database_errors(action), bind.begin() as connection:
        _lock(connection, lock_key)
        config = AlembicConfig()
        config.set_main_option("script_location", str(migrations))
        config.attributes["connection"] = connection
        command.upgrade(config, "head")


@contextmanager
def read_connection(engine: Engine, action: str) -> Iterator[Connection]:
    """A plain connection in a read transaction (no lock): the fast path."""
    with database_errors(action), engine.connect() as connection, connection.begin():
        yield connection
