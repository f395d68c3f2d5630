"""Fixtures for the identity registry: a session PostgreSQL server and fresh databases."""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.postgres import PostgresServer, find_pg_bin, postgres_server
from iris_jupyterhub.posix import IdentityRegistry

_counter = itertools.count()

RegistryFactory = Callable[..., IdentityRegistry]


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """One real PostgreSQL server for the whole test session."""
    if find_pg_bin() is None:
        message = "PostgreSQL server binaries not installed (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)  # CI must test the real database, never skip it
        pytest.skip(message)
    with postgres_server("registry") as server:
        yield server


@pytest.fixture
def pg_url(pg_server: PostgresServer) -> str:
    """URL of a fresh, empty database on the session server."""
    return pg_server.create_database(f"t{next(_counter)}")


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database URL, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'registry.sqlite'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def make_registry(db_url: str) -> Iterator[RegistryFactory]:
    """Build registries on ``db_url`` (options as keyword arguments); closed afterwards."""
    made: list[IdentityRegistry] = []

    def factory(**options: Any) -> IdentityRegistry:
        registry = IdentityRegistry(db_url=options.pop("db_url", db_url), **options)
        made.append(registry)
        return registry

    yield factory
    for registry in made:
        registry.close()


@pytest.fixture
def registry(make_registry: RegistryFactory) -> IdentityRegistry:
    """A registry with default options on a fresh database."""
    return make_registry()
