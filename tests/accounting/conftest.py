"""Accounting fixtures: SQLite and PostgreSQL databases, sample sessions, the APEL loader."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from iris_jupyterhub.accounting import AccountingStore, SessionRecord
from tests.posix.conftest import pg_server, pg_url  # noqa: F401 - shared fixtures

VENDOR_APEL = Path(__file__).resolve().parents[1] / "vendor" / "apel"
UTC = timezone.utc


def at(*parts: int) -> datetime:
    """A UTC datetime."""
    return datetime(*parts, tzinfo=UTC)  # type: ignore[arg-type]


def session(n: int, **overrides: Any) -> SessionRecord:
    """A fully populated session number ``n`` (record id derived from ``n``)."""
    values: dict[str, Any] = {
        "record_id": f"{n:032x}",
        "identity_key": f"https://iris-iam.stfc.ac.uk/ sub-{n}",
        "hub_user": f"user{n}",
        "server_name": "",
        "posix_user": f"user{n}",
        "uid": 2_001_000_000 + n,
        "gid": 2_070_000_000 + n,
        "group": "iris-lsst",
        "canonical_group": "iris/lsst",
        "profile": "standard",
        "choices": {"image": "scipy"},
        "image": "quay.io/jupyter/scipy-notebook:2025-01-06",
        "cpu_request": 0.5,
        "cpu_limit": 2.0,
        "memory_request": 2 * 2**30,
        "memory_limit": 4 * 2**30,
        "gpus": 0,
        "node": "worker-1",
        "namespace": "jhub",
        "pod": f"jupyter-user{n}",
        "start": at(2026, 1, 10, 9, 0, 0),
    }
    values.update(overrides)
    return SessionRecord(**values)


@pytest.fixture(params=["sqlite", "postgresql"])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh database URL, once for SQLite and once for PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'accounting.sqlite'}"
    return str(request.getfixturevalue("pg_url"))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """A fresh SQLite database URL (for tests about formats, not the database)."""
    return f"sqlite:///{tmp_path / 'accounting.sqlite'}"


@pytest.fixture
def store(db_url: str) -> Iterator[AccountingStore]:
    """A store on a fresh database (both backends)."""
    made = AccountingStore.from_url(db_url, lock_timeout=30)
    yield made
    made.close()


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[AccountingStore]:
    """A store on a fresh SQLite database."""
    made = AccountingStore.from_url(sqlite_url)
    yield made
    made.close()


@pytest.fixture(scope="session")
def apel_loader() -> Any:
    """The APEL server's ``RecordFactory`` (vendored, see tests/vendor/apel/README.md)."""
    sys.path.insert(0, str(VENDOR_APEL))
    try:
        with warnings.catch_warnings():  # upstream's Python 2 era regex escapes
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", SyntaxWarning)
            from apel.db.loader.record_factory import RecordFactory
    finally:
        sys.path.remove(str(VENDOR_APEL))
    return RecordFactory()
