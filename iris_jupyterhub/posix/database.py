"""The registry's transactions: the shared ones (:mod:`iris_jupyterhub.db`), failing with
:class:`~iris_jupyterhub.posix.RegistryError` subclasses whose ``user_message`` a
researcher can read, and the registry's schema upgrade.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session

from .. import db
from .errors import RegistryError, RegistryUnavailableError

__all__ = [
    "read_connection",
    "read_session",
    "registry_errors",
    "upgrade_registry",
    "write_session",
]

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"


@contextmanager
def registry_errors() -> Iterator[None]:
    """Database failures as :class:`RegistryUnavailableError` or :class:`RegistryError`."""
    try:
        yield
    except db.DatabaseUnavailableError as error:
        raise RegistryUnavailableError(f"identity registry {error}") from error
    except db.DatabaseError as error:
        raise RegistryError(f"identity registry {error}") from error


@contextmanager
def read_session(engine: Engine, action: str) -> Iterator[Session]:
    """:func:`iris_jupyterhub.db.read_session` with registry errors."""
    with registry_errors(), db.read_session(engine, action) as session:
        yield session


@contextmanager
def write_session(engine: Engine, action: str) -> Iterator[Session]:
    """:func:`iris_jupyterhub.db.write_session` with registry errors."""
    with registry_errors(), db.write_session(engine, action) as session:
        yield session


@contextmanager
def read_connection(engine: Engine, action: str) -> Iterator[Connection]:
    """:func:`iris_jupyterhub.db.read_connection` with registry errors."""
    with registry_errors(), db.read_connection(engine, action) as connection:
        yield connection


def upgrade_registry(engine: Engine) -> None:
    """Migrate the registry's tables to the latest schema (safe when processes start together)."""
    with registry_errors():
        db.upgrade_schema(
            engine,
            MIGRATIONS_DIR,
            lock_key=db.MIGRATION_LOCK_KEY,
            action="upgrading the database schema",
        )
